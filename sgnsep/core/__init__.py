"""What every other part of sgnsep stands on: interrupt handling (one cleanup on SIGINT, SIGTERM, SIGHUP), files written atomically, folder locks, and the bounds every setting is checked against."""
