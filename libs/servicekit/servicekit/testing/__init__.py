"""Test support: a real PostgreSQL, fresh databases from migrated templates, real HTTP servers,
and internal tokens minted the way the gateway mints them."""
