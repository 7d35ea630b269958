"""A slot on its way out: waiting until nothing is in flight on it (`wait`), then ending the
connections that outlast its drain_timeout a few at a time (`handover`)."""
