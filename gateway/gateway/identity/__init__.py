"""Identity: users, teams, sessions, API keys, audit; the gateway's authentication."""
