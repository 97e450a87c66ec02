"""Pure booking cores: the booking domain (references, PINs), the capacity planner and the
ledger interface the store implements. No sockets, threads, clocks or third-party I/O here."""
