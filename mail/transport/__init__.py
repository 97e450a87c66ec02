"""Mail transports around the pure mail agent: the SMTP listener (aiosmtpd), the IMAP IDLE
agent (aioimaplib), the outbound sender (aiosmtplib / Maildir) and the pipeline that joins them
to the agent and the store."""
