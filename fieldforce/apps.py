"""The five apps, as data: who they are, where their code and migrations live."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AppInfo:
    name: str
    package: str
    schema: str
    default_port: int
    # uvicorn's `--http`: its httptools implementation (the parser the gateway's pool uses too).
    http_protocol: str = "httptools"
    # uvicorn's `--timeout-keep-alive`: how long an idle client connection is kept. A server
    # that closes an idle connection races the client's next request on it (the client reads
    # "disconnected without a response"); the side that closes first must be the client. The
    # services' only clients are the gateway's pools, which drop a connection after 4 s, so
    # uvicorn's 5 s does; the gateway's clients are browsers, SDKs (httpx keeps 5 s) and load
    # balancers (60 s idle is common), so it keeps theirs longer than any of them.
    keep_alive_seconds: int = 5

    @property
    def factory(self) -> str:
        return f"{self.package}.main:create_app"

    @property
    def migrations_dir(self) -> Path:
        module = importlib.import_module(f"{self.package}.main")
        path: Path = module.MIGRATIONS
        return path

    @property
    def env_prefix(self) -> str:
        return f"{self.name.upper()}_"


GATEWAY = AppInfo("gateway", "gateway", "identity", 8000, keep_alive_seconds=75)
SERVICES = (
    AppInfo("customers", "customers", "customers", 8001),
    AppInfo("visits", "visits", "visits", 8002),
    AppInfo("opportunities", "opportunities", "opportunities", 8003),
    AppInfo("analytics", "analytics", "analytics", 8004),
)
APPS = (GATEWAY, *SERVICES)
BY_NAME = {a.name: a for a in APPS}
