"""The sqlite3 adapter: bookings (`sqlite`), the mail journal and outgoing queue (`mail`), call
records (`calls`) and PIN lockouts (`lockouts`), over one database file whose migrations are
`schema`."""
