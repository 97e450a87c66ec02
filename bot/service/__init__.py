"""The asyncio wiring of the voice side: calls and rooms (`voice`), the per-call IVR driver,
the switchboard, the booking watch, name files, service runs, lockouts and log set-up. It joins
cores and adapters; nothing here decides what a caller hears (the cores do)."""
