"""Tests against a real server: PouchDB Server started per session, or COUCHDB_URL."""
