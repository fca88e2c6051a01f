"""Tests that need no CouchDB server: the sans-I/O protocol on recorded bytes, the row parser,
the codec and scanner, the feed state machine, fake loopback servers, the typed facades."""
