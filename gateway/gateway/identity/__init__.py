"""Identity: users, teams, sessions, API keys, audit; the gateway's authentication.

One package per feature, each laid out by the anatomy's file names (router, service,
repository, schemas, exceptions, events where it emits them):

- `auth/`: signing in (password and refresh-token grants), signing out, failed sign-ins,
  `/me` and one's own password.
- `users/`, `teams/`, `api_keys/`: the directory and the integrations' keys, for admins.
- `audit/`: the trail every feature writes to, and its list.

Shared by them, here: the tables (`models.py`, one schema of tightly linked tables), the
per-request `Authenticator` (`authn.py`: tokens and keys checked off the database), tokens,
passwords, scopes, the common dependencies and route class (`dependencies.py`, `routing.py`)
and the start-up hook (`hooks.py`). The routers are wired in `gateway/main.py`.

- Roles: admin (everything), manager (the teams they lead and all below them), rep (their own
  team); what each role may do is one table in `scopes.py`. API keys carry explicit scopes and
  act with the role `integration`.
- Sign-in gives a JWT access token (HS256, ~15 min) naming its session, and a rotating refresh
  token (stored as a digest). A session is one refresh-token family: presenting a rotated token
  ends it. Deactivation, logout, a password change end sessions; the `Authenticator` refuses
  their access tokens as soon as the change commits, here and on every replica (NOTIFY).
- Failed sign-ins (and wrong current passwords) are counted in Postgres (`auth/throttle.py`):
  an (account, client address) pair and a spraying address are refused with 429 for a while;
  an account as a whole is only slowed, so no one can lock its owner out. Client addresses
  follow the gateway's one rule (`gateway/clientaddr.py`).
- Emails are NFKC-normalised; invisible characters and mixed scripts are refused, so that no
  two accounts look alike (`emails.py`).
- Changes are published on the gateway's outbox feed: user.created, user.updated,
  user.team_changed, user.deactivated, user.reactivated, team.changed (with the managers who see
  the team, nearest first, so consumers need not call back).
"""
