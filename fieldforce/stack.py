"""Start and stop the five apps as real processes (used by `make run` and end-to-end tests).

Every process is ours: started here, remembered by PID, stopped here. Nothing is killed by name.
The stack binds each app's listening socket itself and hands it to uvicorn (`--fd`): a port of 0
takes a free one from the system, and no other process can take it between choosing and binding
(`servicekit.sockets`, which also says why the socket carries TCP_NODELAY).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fieldforce.apps import APPS, GATEWAY, AppInfo
from servicekit.migrations import upgrade_head
from servicekit.sockets import listening_socket

# Settings only the gateway reads (the first admin's login), and the launcher's own.
_GATEWAY_ONLY = ("BOOTSTRAP_ADMIN_",)
_LAUNCHER_PREFIX = "FIELDFORCE_"


def migrate_all(database_url: str, apps: tuple[AppInfo, ...] = APPS) -> None:
    for app in apps:
        upgrade_head(app.migrations_dir, database_url, app.schema)


@dataclass
class RunningApp:
    info: AppInfo
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    database_url: str
    ports: Mapping[str, int]
    log_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    apps: tuple[AppInfo, ...] = APPS
    running: dict[str, RunningApp] = field(default_factory=dict)
    _sockets: dict[str, socket.socket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ports = dict(self.ports)

    def bind(self, name: str) -> int:
        """The app's listening socket, bound now; with port 0 the system picks a free one."""
        if name not in self._sockets:
            try:
                sock = listening_socket(self.host, self.ports[name])
            except OSError as exc:
                raise RuntimeError(
                    f"{name}: cannot listen on port {self.ports[name]}: {exc}"
                ) from exc
            self._sockets[name] = sock
            self.ports = {**self.ports, name: int(sock.getsockname()[1])}
        return self.ports[name]

    def app_env(self, app: AppInfo) -> dict[str, str]:
        """The app's environment: ours and the stack's, less what belongs to other apps.

        Each app gets only its own secrets: another app's `<APP>_` settings (the gateway's
        signing key and token secret among them), the first admin's login (the gateway's) and
        the launcher's own `FIELDFORCE_` settings stay out.
        """
        gateway = GATEWAY.name
        others = tuple(a.env_prefix for a in self.apps if a is not app)
        if app.name != gateway:
            others += _GATEWAY_ONLY
        env = {
            name: value
            for name, value in {**os.environ, **self.env}.items()
            if not name.startswith(others) and not name.startswith(_LAUNCHER_PREFIX)
        }
        env["DATABASE_URL"] = self.database_url
        if app.name == gateway:
            for other in (a for a in self.apps if a is not app):
                env.setdefault(
                    f"{app.env_prefix}UPSTREAM_{other.name.upper()}",
                    f"http://127.0.0.1:{self.ports[other.name]}",
                )
        else:
            # Services follow each other's event feeds through the gateway's public entry.
            env["GATEWAY_URL"] = os.environ.get(
                "GATEWAY_URL", f"http://127.0.0.1:{self.ports[gateway]}"
            )
        return env

    def start_app(self, app: AppInfo) -> RunningApp:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{app.name}.log"
        port = self.bind(app.name)
        sock = self._sockets.pop(app.name)
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            app.factory,
            "--fd",
            str(sock.fileno()),
            "--http",
            app.http_protocol,
            "--no-access-log",
            # X-Forwarded-For is the gateway's to judge (GATEWAY_TRUSTED_PROXIES), not uvicorn's.
            "--no-proxy-headers",
            "--timeout-graceful-shutdown",
            "5",
            "--timeout-keep-alive",
            str(app.keep_alive_seconds),
        ]
        with sock, log_path.open("ab") as log:
            process = subprocess.Popen(
                cmd,
                env=self.app_env(app),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(sock.fileno(),),
            )
        running = RunningApp(app, port, process, log_path)
        self.running[app.name] = running
        return running

    def start(self) -> None:
        # Every port is known before any app starts: each app's environment names the others.
        for app in self.apps:
            self.bind(app.name)
        for app in self.apps:
            self.start_app(app)

    def wait_ready(self, timeout: float = 30.0, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names or self.running)
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                app = self.running[name]
                if app.process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited ({app.process.returncode}); see {app.log_path}"
                    )
                try:
                    with urllib.request.urlopen(f"{app.url}/readyz", timeout=2) as r:  # noqa: S310
                        if r.status == 200:
                            pending.discard(name)
                except (urllib.error.URLError, OSError):
                    pass
            if pending:
                time.sleep(0.2)
        if pending:
            raise RuntimeError(f"not ready within {timeout:.0f}s: {sorted(pending)}")

    def stop_app(self, name: str, timeout: float = 10.0) -> None:
        app = self.running.pop(name, None)
        if app is None or app.process.poll() is not None:
            return
        app.process.send_signal(signal.SIGTERM)
        try:
            app.process.wait(timeout)
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait()

    def stop(self) -> None:
        for name in list(self.running):
            self.stop_app(name)
