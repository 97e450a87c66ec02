"""Booking by email: the pure parser/composer/agent policy and the thin SMTP/IMAP/outbox adapters."""
