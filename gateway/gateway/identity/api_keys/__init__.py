"""API keys: scoped, revocable credentials of integrations (and of the services' event
consumers), stored as digests; their secret is shown once."""
