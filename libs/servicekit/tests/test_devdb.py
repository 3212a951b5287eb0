"""The embedded PostgreSQL launcher: its port is kept, and as root it runs from a private folder
without loosening anyone's permissions."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from servicekit.devdb import (
    SYSTEM_USER,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    PortTaken,
    data_folder_for,
    free_port,
    package_bindir,
    throwaway_postgres,
)

ROOT = Path(__file__).resolve().parents[3]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the server's own user is used as root only")


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


def _listening_port(server: EmbeddedPostgres) -> int:
    # postmaster.pid, line 4: the port the server listens on.
    return int((server.data_dir / "postmaster.pid").read_text().splitlines()[3])


def _time_wait_on(port: int) -> None:
    """Leave a connection in TIME-WAIT on `port`: the listening side closes first."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()
            client.recv(1)


def test_a_port_in_time_wait_is_kept_and_a_taken_one_is_an_error_naming_it() -> None:
    port = free_port()
    _time_wait_on(port)
    with socket.socket() as plain, pytest.raises(OSError):
        # Without SO_REUSEADDR the lingering connection holds the port: what used to make the
        # launcher pick another one.
        plain.bind(("127.0.0.1", port))
    with throwaway_postgres(port=port) as server:
        assert server.port == port and _listening_port(server) == port
        assert asyncio.run(_select_one(server.url)) == 1
        server.stop()
        assert server.pid() is None
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            with pytest.raises(PortTaken, match=rf"\b{port}\b"):
                server.start()
        # Free again: the same server starts on the same port.
        server.start()
        assert _listening_port(server) == port


@pytest.fixture
def private() -> Iterator[Path]:
    """A private folder (0700), as `mkdir -m 700` or a home folder is, holding a clone."""
    folder = Path(tempfile.mkdtemp(prefix="fieldforce-private-"))
    folder.chmod(0o700)
    (folder / "p").mkdir(mode=0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """Stands for /var/cache and /var/lib: a folder every user may pass through."""
    folder = Path(tempfile.mkdtemp(prefix="fieldforce-system-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _modes(*paths: Path) -> dict[Path, int]:
    return {p: p.lstat().st_mode for p in paths}


def _venv_like_install(clone: Path) -> Path:
    """The installed wheel's binaries, libraries and vendored libraries, copied inside the
    clone as a virtual environment holds them; returns the copy's bin folder."""
    installed = package_bindir()
    installed_site = installed.parents[2]
    prefix = installed.parent.relative_to(installed_site)
    site = clone / ".venv" / "lib" / "site-packages"
    for part in ("bin", "lib", "share"):
        shutil.copytree(installed_site / prefix / part, site / prefix / part)
    vendored = installed_site / f"{prefix.parts[0]}.libs"
    if vendored.is_dir():
        shutil.copytree(vendored, site / vendored.name)
    return site / prefix / "bin"


@as_root
def test_as_root_a_clone_in_a_private_folder_runs_and_no_folder_is_loosened(
    private: Path, open_folder: Path
) -> None:
    clone = private / "p"
    bindir = _venv_like_install(clone)
    folders = [private, clone, *(p for p in (clone / ".venv").rglob("*") if p.is_dir())]
    before = _modes(*folders)

    data = data_folder_for(clone / ".pgdata", system_root=open_folder / "lib")
    # The server's user cannot enter the clone: the data lives in a folder of its own, and
    # the clone's .pgdata shows where.
    assert data.parent == open_folder / "lib"
    assert (clone / ".pgdata").is_symlink() and (clone / ".pgdata").resolve() == data
    server = EmbeddedPostgres(
        clone / ".pgdata", port=free_port(), bindir=bindir, cache_root=open_folder / "cache"
    )
    server.start()
    try:
        assert asyncio.run(_select_one(server.url)) == 1
        server.stop()
        server.start()  # a second start finds everything in place
        assert asyncio.run(_select_one(server.url)) == 1
    finally:
        server.stop()

    assert _modes(*folders) == before
    owner = pwd.getpwnam(SYSTEM_USER).pw_uid
    assert data.stat().st_uid == owner and stat.S_IMODE(data.stat().st_mode) == 0o700
    # The binaries run from a cache that root owns and only root may change.
    assert server.bindir.is_relative_to(open_folder / "cache")
    for path in (open_folder / "cache").rglob("*"):
        info = path.lstat()
        assert info.st_uid == 0, path
        if not stat.S_ISLNK(info.st_mode):
            assert not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH), path


@as_root
def test_as_root_data_the_servers_user_cannot_reach_stops_at_once_saying_what_to_do(
    private: Path,
) -> None:
    before = _modes(private)
    with pytest.raises(EmbeddedPostgresError, match="cannot enter") as refused:
        EmbeddedPostgres(private / "p" / "data", port=free_port()).start()
    assert str(private / "p") in str(refused.value)
    assert _modes(private) == before


@as_root
def test_as_root_the_launcher_migrates_in_a_clone_inside_a_private_folder(private: Path) -> None:
    """`fieldforce.cli migrate`, the way `make migrate` runs it, with its data folder in a
    clone under a 0700 folder: it works and leaves every folder's mode as it was."""
    clone = private / "p"
    before = _modes(private, clone)
    env = {
        **os.environ,
        "FIELDFORCE_PG_DIR": str(clone / ".pgdata"),
        "FIELDFORCE_PG_PORT": str(free_port()),
    }
    env.pop("DATABASE_URL", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fieldforce.cli", "migrate"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        assert "every schema is at head" in done.stdout
        assert _modes(private, clone) == before
    finally:
        link = clone / ".pgdata"
        if link.is_symlink():
            shutil.rmtree(link.resolve(), ignore_errors=True)


async def _show(url: str, name: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval(f"SHOW {name}"))
    finally:
        await conn.close()


def test_server_settings_are_given_at_every_start_quoted_as_one_word() -> None:
    settings = {"work_mem": "7MB", "application_name": "two words; and a 'quote'"}
    with throwaway_postgres(settings=settings) as server:
        assert asyncio.run(_show(server.url, "work_mem")) == "7MB"
        server.stop()
        server.start()
        assert asyncio.run(_show(server.url, "work_mem")) == "7MB"
        assert asyncio.run(_show(server.url, "application_name")) == settings["application_name"]
