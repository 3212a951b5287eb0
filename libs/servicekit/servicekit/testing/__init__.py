"""Test support: a real PostgreSQL, fresh databases from migrated templates, real HTTP servers,
internal tokens minted the way the gateway mints them, and the service harness built on them
(`harness`: one app called as a principal, its feed read back; `org`: a team tree of managers
and reps; `clock`: time that moves when a test says so)."""
