"""Pure conference cores: who is where and hears whom (the owner of conference state, mixer, rooms, announcements,
talk detection, the end of booked conferences) and the numpy reference mixer used as the test
oracle. No sockets, threads, clocks or third-party I/O here."""
