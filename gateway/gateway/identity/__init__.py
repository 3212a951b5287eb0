"""Identity: users, teams, sessions, API keys, audit; the gateway's authentication.

- Roles: admin (everything), manager (the teams they lead and all below them), rep (their own
  team); what each role may do is one table in `scopes.py`. API keys carry explicit scopes and
  act with the role `integration`.
- Sign-in gives a JWT access token (HS256, ~15 min) naming its session, and a rotating refresh
  token (stored as a digest). A session is one refresh-token family: presenting a rotated token
  ends it. Deactivation, logout, a password change end sessions; the `Authenticator` refuses
  their access tokens as soon as the change commits, here and on every replica (NOTIFY).
- Failed sign-ins are counted in Postgres per account and per client address: slowed, then
  refused with 429 for a while.
- Changes are published on the gateway's outbox feed: user.created, user.updated,
  user.team_changed, user.deactivated, user.reactivated, team.changed (with the managers who see
  the team, nearest first, so consumers need not call back).
"""
