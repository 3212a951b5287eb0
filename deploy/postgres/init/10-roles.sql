-- Roles, schemas and rights of the compose stack's database.
--
-- The official postgres image runs this file once, as the superuser, in POSTGRES_DB, when the
-- data volume is empty. 20-passwords.sh then gives each login role its password from the
-- environment, so no password is ever written in a committed file.
--
-- Design: one owner for the structure, one runtime role per app.
--
--   fieldforce_migrator  owns the five schemas and everything in them. Only the one-shot
--                        `migrate` service logs in with it (python -m fieldforce.cli migrate);
--                        no app container is given its password. It needs CREATE on the
--                        database because every Alembic environment starts with
--                        CREATE SCHEMA IF NOT EXISTS, which PostgreSQL checks before it
--                        notices that the schema exists.
--   gateway              runtime role of the gateway: schema identity, and nothing else.
--   customers            runtime role of the customers service: schema customers.
--   visits               runtime role of the visits service: schema visits.
--   opportunities        runtime role of the opportunities service: schema opportunities.
--   analytics            runtime role of the analytics service: schema analytics.
--
-- A runtime role may read and write the rows of its own schema (USAGE on the schema, DML on its
-- tables, its sequences) and nothing more: it cannot see another app's schema, cannot create or
-- alter tables (schema changes go through migrations only), cannot use the public schema.
-- Sharing between services happens over HTTP and the event feeds, never through the database.
--
-- The table rights are default privileges of fieldforce_migrator: every table a later migration
-- creates in, say, schema customers is readable and writable by role customers from the moment
-- it exists, with no GRANT to remember in the migration. (This covers alembic_version too,
-- which /readyz reads to compare the database's revision with the code's.)
--
-- Adding an app: add its role and schema here, its password variable in 20-passwords.sh, the
-- compose service, and a prometheus job; tests/test_compose.py checks that they agree.

-- Nobody gets anything on this database or the public schema unless granted below.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;

CREATE ROLE fieldforce_migrator LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO fieldforce_migrator',
                   current_database());
END
$$;

-- gateway -> schema identity ------------------------------------------------------------------
CREATE ROLE gateway LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE SCHEMA identity AUTHORIZATION fieldforce_migrator;
GRANT USAGE ON SCHEMA identity TO gateway;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA identity
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO gateway;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA identity
    GRANT USAGE, SELECT ON SEQUENCES TO gateway;
ALTER ROLE gateway SET search_path = identity;

-- customers -> schema customers ---------------------------------------------------------------
CREATE ROLE customers LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE SCHEMA customers AUTHORIZATION fieldforce_migrator;
GRANT USAGE ON SCHEMA customers TO customers;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA customers
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO customers;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA customers
    GRANT USAGE, SELECT ON SEQUENCES TO customers;
ALTER ROLE customers SET search_path = customers;

-- visits -> schema visits ---------------------------------------------------------------------
CREATE ROLE visits LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE SCHEMA visits AUTHORIZATION fieldforce_migrator;
GRANT USAGE ON SCHEMA visits TO visits;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA visits
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO visits;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA visits
    GRANT USAGE, SELECT ON SEQUENCES TO visits;
ALTER ROLE visits SET search_path = visits;

-- opportunities -> schema opportunities -------------------------------------------------------
CREATE ROLE opportunities LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE SCHEMA opportunities AUTHORIZATION fieldforce_migrator;
GRANT USAGE ON SCHEMA opportunities TO opportunities;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA opportunities
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO opportunities;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA opportunities
    GRANT USAGE, SELECT ON SEQUENCES TO opportunities;
ALTER ROLE opportunities SET search_path = opportunities;

-- analytics -> schema analytics ---------------------------------------------------------------
CREATE ROLE analytics LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE SCHEMA analytics AUTHORIZATION fieldforce_migrator;
GRANT USAGE ON SCHEMA analytics TO analytics;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA analytics
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO analytics;
ALTER DEFAULT PRIVILEGES FOR ROLE fieldforce_migrator IN SCHEMA analytics
    GRANT USAGE, SELECT ON SEQUENCES TO analytics;
ALTER ROLE analytics SET search_path = analytics;

-- Connecting (and session-private temporary tables) is all a runtime role may do database-wide.
DO $$
BEGIN
    EXECUTE format(
        'GRANT CONNECT, TEMPORARY ON DATABASE %I TO gateway, customers, visits, opportunities, '
        'analytics',
        current_database());
END
$$;
