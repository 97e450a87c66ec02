"""confbot — telephone conferences booked by email. The `bot` package holds the domain cores,
the SIP and storage adapters, the config, the CLI and the composition root (`bot.app`)."""
