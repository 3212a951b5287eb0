"""The benchmark harness: a throwaway PostgreSQL, servers started and stopped by PID, wrk.

Each benchmark module measures the project and its baseline in the same run, interleaved round
by round, because the machine is shared and noisy: only the ratio measured side by side means
anything, absolute req/s move with whatever else runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg

from servicekit.auth import generate_keypair
from servicekit.devdb import EmbeddedPostgres, free_port, throwaway_postgres
from servicekit.sockets import listening_socket
from servicekit.testing.tokens import TokenMinter

# What `--http` every uvicorn side is served with, unless told otherwise (as in the stack).
KIT_PROTOCOL = "httptools"
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
LUA_PATHS = BENCH_DIR / "lua" / "paths.lua"
RESULTS_DIR = BENCH_DIR / "results"


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


@dataclass(frozen=True)
class LoadSettings:
    """How hard and how long wrk drives a server; every knob has a BENCH_* variable."""

    duration: float = 10.0
    warmup: float = 3.0
    rounds: int = 3
    connections: int = 64
    threads: int = 2

    @classmethod
    def from_env(cls) -> LoadSettings:
        return cls(
            duration=_env_float("BENCH_DURATION", cls.duration),
            warmup=_env_float("BENCH_WARMUP", cls.warmup),
            rounds=max(1, _env_int("BENCH_ROUNDS", cls.rounds)),
            connections=_env_int("BENCH_CONNECTIONS", cls.connections),
            threads=_env_int("BENCH_THREADS", cls.threads),
        )


def pg_settings(spec: str) -> dict[str, str]:
    """`BENCH_PG_SETTINGS` ("shared_buffers=1GB,work_mem=16MB") as server settings."""
    settings = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"bench: BENCH_PG_SETTINGS: expected name=value, got {item!r}")
        settings[name.strip()] = value.strip()
    return settings


def ensure_wrk() -> str:
    """The wrk binary; as root, installed from Debian's package when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(
            "bench: the load generator `wrk` is not installed and this is not root.\n"
            "Install the Debian package first: sudo apt-get install -y wrk"
        )
    print("bench: installing wrk (apt-get install -y wrk)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
        subprocess.run(install, env=env, check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: `apt-get install -y wrk` did not provide wrk; install it by hand")
    return found


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: dict[str, int]
    # CPU time the server process spent per answered request (user + system, from /proc):
    # steadier than req/s on a shared machine, since waiting for a core costs no CPU time.
    cpu_us_per_request: float | None = None
    # CPU time the whole machine spent per answered request (every process: the load
    # generator, PostgreSQL, the servers; /proc/stat): where the cores are shared, what decides
    # how far a path can go once they are busy.
    machine_us_per_request: float | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @classmethod
    def parse(cls, output: str) -> WrkResult:
        for line in output.splitlines():
            if line.startswith("BENCH_RESULT "):
                raw = json.loads(line[len("BENCH_RESULT ") :])
                seconds = raw["duration_us"] / 1e6
                return cls(
                    requests=raw["requests"],
                    duration_s=round(seconds, 3),
                    rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
                    p50_ms=raw["p50_us"] / 1000,
                    p90_ms=raw["p90_us"] / 1000,
                    p99_ms=raw["p99_us"] / 1000,
                    max_ms=raw["max_us"] / 1000,
                    mean_ms=round(raw["mean_us"] / 1000, 3),
                    errors=raw["errors"],
                )
        raise RuntimeError(f"wrk printed no BENCH_RESULT line:\n{output[-3000:]}")


@dataclass
class RequestSet:
    """What wrk sends: paths (one per line, optionally TAB + header-set number) and headers;
    for writes, the method and a bodies file (line n is the body sent with path line n)."""

    paths_file: Path
    headers_file: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    bodies_file: Path | None = None

    def sample_body(self) -> bytes | None:
        if self.bodies_file is None:
            return None
        return self.bodies_file.read_text().splitlines()[0].encode()

    def sample(self) -> tuple[str, dict[str, str]]:
        """The first request of the set, for a sanity check before the load."""
        line = self.paths_file.read_text().splitlines()[0]
        path, _, key = line.partition("\t")
        headers = dict(self.headers)
        if key and self.headers_file is not None:
            sets = self.headers_file.read_text().splitlines()
            for item in sets[int(key) - 1].split("\t"):
                name, _, value = item.partition(":")
                headers[name.strip()] = value.strip()
        return path, headers


def _drain(pipe: IO[bytes] | None, path: Path) -> None:
    if pipe is None:
        return
    with path.open("wb", buffering=0) as log, pipe:
        while chunk := pipe.read(1 << 16):
            log.write(chunk)


SERVER_KINDS = ("uvicorn", "granian")


class Server:
    """One server process (one worker), started and stopped by its PID: uvicorn, or granian
    (whose worker is a child process of the PID started; CPU is summed over both)."""

    def __init__(
        self,
        name: str,
        app: str,
        *,
        env: dict[str, str],
        log_dir: Path,
        factory: bool = False,
        ready_path: str = "/healthz",
        ready_headers: dict[str, str] | None = None,
        kind: str = "uvicorn",
        http: str = KIT_PROTOCOL,
        checkout: Path | None = None,
    ) -> None:
        if kind not in SERVER_KINDS:
            raise ValueError(f"unknown server {kind!r}; one of {', '.join(SERVER_KINDS)}")
        self.kind = kind
        self.http = http
        # Another checkout of the project to serve from (its code, its virtual environment):
        # for measuring two versions side by side in one run. None: this one.
        self.root = checkout or REPO_ROOT
        self.python = sys.executable if checkout is None else str(checkout / ".venv/bin/python")
        self.name = name
        self.app = app
        # uvicorn gets its socket bound here (`--fd`), so that the port is ours from the moment
        # it is chosen; granian binds by itself, on a port free a moment ago.
        self._sock: socket.socket | None = None
        if kind == "uvicorn":
            self._sock = listening_socket("127.0.0.1")
            self.port = int(self._sock.getsockname()[1])
        else:
            self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.factory = factory
        self.log_path = log_dir / f"{name}.log"
        self.ready_path = ready_path
        self.ready_headers = ready_headers or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        if self.kind == "granian":
            # Same terms as uvicorn below: one worker, one runtime thread, uvloop, the server's
            # access log off, lifespan on (interface asgi; asginl would skip it).
            cmd = [self.python, "-m", "granian", "--interface", "asgi", self.app]
            cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--loop", "uvloop"]
            cmd += ["--workers", "1", "--runtime-threads", "1", "--http", "1"]
            cmd += ["--no-access-log", "--log-level", "warning"]
            # Further granian options to try (e.g. "--runtime-mode st"), space-separated.
            cmd += os.environ.get("BENCH_GRANIAN_OPTS", "").split()
            if self.factory:
                cmd.append("--factory")
            return cmd
        # Both sides of every comparison run exactly this way: uvloop, one worker, uvicorn's
        # own access log off (the kit writes its own), httptools unless the side is given
        # another protocol, and, as the stack and the image serve every app, without uvicorn's
        # proxy-headers layer (X-Forwarded-For is the gateway's to judge).
        assert self._sock is not None
        cmd = [self.python, "-m", "uvicorn", self.app, "--fd", str(self._sock.fileno())]
        cmd += ["--loop", "uvloop", "--http", self.http, "--no-proxy-headers"]
        cmd += ["--no-access-log", "--log-level", "warning", "--lifespan", "on"]
        if self.factory:
            cmd.append("--factory")
        return cmd

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.root), env.get("PYTHONPATH")]))
        # The server writes its log lines into a pipe, as under a container runtime; a thread
        # copies them to the log file in large chunks. Handing it a file instead made every
        # line a write to the file system (an inode update each), a cost of the harness's disk
        # that production does not pay and that grows with how much a side logs.
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,
            pass_fds=() if self._sock is None else (self._sock.fileno(),),
        )
        if self._sock is not None:
            self._sock.close()  # the server has its own copy
            self._sock = None
        threading.Thread(target=_drain, args=(self.proc.stdout, self.log_path), daemon=True).start()
        print(f"  started {self.name} ({self.kind}, pid {self.proc.pid}) on {self.url}", flush=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            try:
                status, _ = self.get(self.ready_path, self.ready_headers)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.log_tail()}")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def log_tail(self, chars: int = 3000) -> str:
        time.sleep(0.3)  # let the drain thread catch up
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process and its live descendants so far
        (Linux /proc), else None. Granian serves from a child process of the one started."""
        return None if self.proc is None else tree_cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        print(f"  stopped {self.name} (pid {proc.pid})", flush=True)


def tree_cpu_seconds(root: int | None) -> float | None:
    """User + system CPU time of process `root` and its live descendants so far (Linux /proc:
    a server and its workers, PostgreSQL and its backends), else None."""
    stats = _proc_stats()
    if root is None or root not in stats:
        return None
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += [child for child, (ppid, _) in stats.items() if ppid == pid]
    return sum(stats[pid][1] for pid in tree) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float | None:
    """CPU time all cores have spent busy since boot (Linux /proc/stat: all but idle and
    iowait), else None."""
    try:
        line = Path("/proc/stat").read_text().split("\n", 1)[0]
    except OSError:
        return None
    ticks = [int(x) for x in line.split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, user + system clock ticks) of every process /proc shows."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return stats


@dataclass
class Side:
    """One side of a comparison: its rounds and their medians."""

    server: str
    rounds: list[WrkResult] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.rounds))

    def cpu_us(self, attr: str = "cpu_us_per_request") -> float | None:
        values = [getattr(r, attr) for r in self.rounds if getattr(r, attr) is not None]
        return float(statistics.median(values)) if values else None

    def summary(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "rps": round(self.median("rps"), 1),
            "cpu_us_per_request": self.cpu_us(),
            "machine_us_per_request": self.cpu_us("machine_us_per_request"),
            "p50_ms": round(self.median("p50_ms"), 2),
            "p99_ms": round(self.median("p99_ms"), 2),
            "requests": sum(r.requests for r in self.rounds),
            "errors": sum(r.error_count for r in self.rounds),
            "rounds": [asdict(r) for r in self.rounds],
        }


def batch_results(rows: int, seconds: Sequence[float]) -> list[WrkResult]:
    """Timed batches (an import, a COPY) as the harness's results: one 'request' = one row,
    every latency the batch's time."""
    out = []
    for s in seconds:
        ms = s * 1000
        out.append(
            WrkResult(
                requests=rows,
                duration_s=round(s, 3),
                rps=round(rows / s, 1),
                p50_ms=ms,
                p90_ms=ms,
                p99_ms=ms,
                max_ms=ms,
                mean_ms=ms,
                errors={},
            )
        )
    return out


@dataclass(frozen=True)
class PacedHop:
    """A layer measured against the baseline by `Context.compare_paced_interleaved`."""

    name: str  # the comparison's name
    server: Server
    requests: RequestSet
    added_p50_goal_ms: float | None = None


def spread(values: Sequence[float]) -> str:
    """Quartiles and range of a few differences (ms), as printed beside their median."""
    if len(values) < 2:
        return "one value" if values else "none"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"quartiles {q1:+.2f} to {q3:+.2f} ms, range {min(values):+.2f} to {max(values):+.2f} ms"


@dataclass
class Comparison:
    benchmark: str
    name: str
    project: Side
    baseline: Side
    goal: float | None = None  # minimum project/baseline throughput ratio
    # Paced comparisons (`Context.compare_paced`): the fixed total rate both sides were sent
    # (req/s), and the most the project may add to the baseline's median latency.
    rate: float | None = None
    added_p50_goal_ms: float | None = None
    # Interleaved paced comparisons (`Context.compare_paced_interleaved`): for each project
    # round, its p50 minus the mean p50 of the baseline rounds just before and after it (ms).
    paired_p50_ms: list[float] | None = None
    # Paired throughput comparisons (each project batch beside its own baseline batch, the
    # two in the same minute): each pair's project/baseline throughput ratio.
    paired_ratios: list[float] | None = None

    @property
    def added_p50_ms(self) -> float:
        """The median of the paired differences when there are some, else the difference of
        the two sides' medians."""
        if self.paired_p50_ms:
            return float(statistics.median(self.paired_p50_ms))
        return self.project.median("p50_ms") - self.baseline.median("p50_ms")

    @property
    def added_p99_ms(self) -> float:
        return self.project.median("p99_ms") - self.baseline.median("p99_ms")

    @property
    def ratio(self) -> float:
        """The median of the pairs' ratios when there are some (the machine's drift within a
        run moves both batches of a pair alike), else the ratio of the two sides' medians."""
        if self.paired_ratios:
            return float(statistics.median(self.paired_ratios))
        return self.medians_ratio

    @property
    def medians_ratio(self) -> float:
        base = self.baseline.median("rps")
        return self.project.median("rps") / base if base else 0.0

    @property
    def cpu_ratio(self) -> float | None:
        """Baseline CPU per request / project CPU per request: the throughput ratio the two
        would have if each had a core to itself."""
        project, baseline = self.project.cpu_us(), self.baseline.cpu_us()
        return baseline / project if project and baseline else None

    @property
    def met(self) -> bool | None:
        verdicts = []
        if self.goal is not None:
            verdicts.append(self.ratio >= self.goal)
        if self.added_p50_goal_ms is not None:
            verdicts.append(self.added_p50_ms < self.added_p50_goal_ms)
        return all(verdicts) if verdicts else None

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "name": self.name,
            "ratio": round(self.ratio, 3),
            "cpu_ratio": None if self.cpu_ratio is None else round(self.cpu_ratio, 3),
            "goal": self.goal,
            "rate": self.rate,
            "added_p50_ms": round(self.added_p50_ms, 3),
            "added_p99_ms": round(self.added_p99_ms, 3),
            "added_p50_goal_ms": self.added_p50_goal_ms,
            "paired_p50_ms": self.paired_p50_ms,
            "paired_ratios": self.paired_ratios,
            "met": self.met,
            "project": self.project.summary(),
            "baseline": self.baseline.summary(),
        }


class Context:
    """What a benchmark module's `run(ctx)` gets: database, keys, servers, load, results.

    Everything it starts is stopped when the harness finishes, also on errors.
    """

    def __init__(self, load: LoadSettings, workdir: Path, wrk: str) -> None:
        self.load = load
        self.workdir = workdir
        self.wrk_bin = wrk
        self.comparisons: list[Comparison] = []
        self.benchmark = ""
        self._stack = ExitStack()
        self._pg: EmbeddedPostgres | None = None
        self._minter: TokenMinter | None = None
        self._servers: list[Server] = []

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        self.stop_servers()
        self._stack.close()

    def stop_servers(self) -> None:
        """Stop every server started so far (the harness calls it after each benchmark)."""
        while self._servers:
            self._servers.pop().stop()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- database -------------------------------------------------------------------------

    @property
    def postgres(self) -> EmbeddedPostgres:
        """The run's PostgreSQL (started on first use): embedded, non-durable, free port."""
        if self._pg is None:
            settings = pg_settings(os.environ.get("BENCH_PG_SETTINGS", ""))
            self._pg = self._stack.enter_context(throwaway_postgres(settings=settings))
            shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
            print(f"  started embedded PostgreSQL on port {self._pg.port} ({shown})", flush=True)
        return self._pg

    def create_database(self, name: str) -> str:
        """A fresh database on the run's server; returns its postgresql:// URL."""
        pg = self.postgres

        async def create() -> None:
            conn = await asyncpg.connect(pg.url)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return pg.url_for(name)

    # -- tokens ---------------------------------------------------------------------------

    @property
    def minter(self) -> TokenMinter:
        """Mints internal tokens as the gateway does; services get `minter.public_pem`."""
        if self._minter is None:
            private, public = generate_keypair()
            self._minter = TokenMinter(private, public)
        return self._minter

    # -- servers and load -----------------------------------------------------------------

    def start_server(
        self,
        name: str,
        app: str,
        *,
        env: dict[str, str] | None = None,
        factory: bool = False,
        ready_path: str = "/healthz",
        ready_headers: dict[str, str] | None = None,
        kind: str = "uvicorn",
        http: str = KIT_PROTOCOL,
        checkout: Path | None = None,
    ) -> Server:
        server = Server(
            name,
            app,
            env=env or {},
            log_dir=self.workdir,
            factory=factory,
            ready_path=ready_path,
            ready_headers=ready_headers,
            kind=kind,
            http=http,
            checkout=checkout,
        )
        self._servers.append(server)
        server.start()
        return server

    def start_service(
        self, app: str, url: str, env: dict[str, str] | None = None, *, name: str | None = None
    ) -> Server:
        """One of the project's apps (`<app>.main:create_app`, named `name` or `app`) on the
        database at `url`, taking the run's internal tokens (`minter`), ready when its
        `/readyz` answers; `env` adds settings."""
        return self.start_server(
            name or app,
            f"{app}.main:create_app",
            factory=True,
            env={
                "DATABASE_URL": url,
                "INTERNAL_TOKEN_PUBLIC_KEY": self.minter.public_pem,
                **(env or {}),
            },
            ready_path="/readyz",
        )

    def write_lines(self, filename: str, lines: Sequence[str]) -> Path:
        path = self.workdir / filename
        path.write_text("\n".join(lines) + "\n")
        return path

    def wrk(
        self,
        server: Server,
        requests: RequestSet,
        duration: float,
        rate: float | None = None,
    ) -> WrkResult:
        """One wrk run: closed loop (each connection sends as soon as it has its answer), or
        paced at `rate` requests per second in total (lua/paths.lua's `delay()`)."""
        cmd = [self.wrk_bin, "-t", str(self.load.threads), "-c", str(self.load.connections)]
        cmd += ["-d", f"{max(1, round(duration))}s", "--latency", "-s", str(LUA_PATHS)]
        cmd += ["--timeout", "10s"]
        for name, value in requests.headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(server.url)
        env = {**os.environ, "BENCH_PATHS": str(requests.paths_file)}
        if rate is not None:
            # Each wrk thread paces its own share of the rate.
            env["BENCH_PACE_MS"] = f"{1000.0 * self.load.threads / rate:.6f}"
        else:
            env.pop("BENCH_PACE_MS", None)
        if requests.headers_file is not None:
            env["BENCH_HEADERS"] = str(requests.headers_file)
        env["BENCH_METHOD"] = requests.method
        if requests.bodies_file is not None:
            env["BENCH_BODIES"] = str(requests.bodies_file)
        else:
            env.pop("BENCH_BODIES", None)
        cpu_before, busy_before = server.cpu_seconds(), _machine_busy_seconds()
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, check=False, timeout=duration + 60
        )
        cpu_after, busy_after = server.cpu_seconds(), _machine_busy_seconds()
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stderr}{done.stdout}")
        if not server.alive():
            raise RuntimeError(f"{server.name} died under load:\n{server.log_tail()}")
        result = WrkResult.parse(done.stdout)
        if cpu_before is not None and cpu_after is not None and result.requests:
            result.cpu_us_per_request = round((cpu_after - cpu_before) * 1e6 / result.requests, 1)
        if busy_before is not None and busy_after is not None and result.requests:
            spent = busy_after - busy_before
            result.machine_us_per_request = round(spent * 1e6 / result.requests, 1)
        # Error answers are cheap: a run with more than a trace of them measures the wrong thing.
        if result.error_count > max(10, result.requests // 1000):
            raise RuntimeError(
                f"{server.name}: {result.errors} errors in {result.requests} requests "
                f"(non-2xx/3xx answers count as 'status'):\n{server.log_tail(1500)}"
            )
        return result

    def compare(
        self,
        name: str,
        *,
        project: Server,
        baseline: Server,
        requests: RequestSet,
        goal: float | None = None,
        baseline_requests: RequestSet | None = None,
    ) -> Comparison:
        """Warm both up, then measure them in alternating rounds; record and print the result."""
        sides = [(project, requests), (baseline, baseline_requests or requests)]
        for server, reqs in sides:
            self.check(server, reqs)
        if self.load.warmup > 0:
            for server, reqs in sides:
                print(f"  warm-up {server.name} ({self.load.warmup:g} s)", flush=True)
                self.wrk(server, reqs, self.load.warmup)
        comparison = Comparison(self.benchmark, name, Side(project.name), Side(baseline.name))
        comparison.goal = goal
        for i in range(self.load.rounds):
            # Alternate who goes first so neither side always runs right after the other.
            order = sides if i % 2 == 0 else sides[::-1]
            for server, reqs in order:
                result = self.wrk(server, reqs, self.load.duration)
                side = comparison.project if server is project else comparison.baseline
                side.rounds.append(result)
                print(
                    f"  round {i + 1}/{self.load.rounds} {server.name:<10} "
                    f"{result.rps:>9.1f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  cpu {result.cpu_us_per_request} us/req  "
                    f"machine {result.machine_us_per_request} us/req  errors {result.error_count}",
                    flush=True,
                )
        cpu = comparison.cpu_ratio
        cpu_text = "" if cpu is None else f" (by server CPU per request: {cpu:.3f})"
        print(f"  {name}: ratio {comparison.ratio:.3f}{cpu_text}", flush=True)
        self.comparisons.append(comparison)
        return comparison

    def compare_paced(
        self,
        name: str,
        *,
        project: Server,
        baseline: Server,
        requests: RequestSet,
        rate: float,
        baseline_requests: RequestSet | None = None,
        added_p50_goal_ms: float | None = None,
    ) -> Comparison:
        """Both sides at the same fixed rate, in alternating rounds: the latency a layer adds.

        A closed loop at saturation measures throughput, and its latencies are mostly queueing
        (each of N connections waits for the N-1 requests ahead of it, so the added p50 there
        is about N/T_project - N/T_baseline). A proxy's own latency is measured below
        saturation, at a rate both sides sustain (as Envoy's and Kong's benchmarks do); the
        answer is the difference of the medians at that rate.
        """
        sides = [(project, requests), (baseline, baseline_requests or requests)]
        comparison = Comparison(self.benchmark, name, Side(project.name), Side(baseline.name))
        comparison.rate = rate
        comparison.added_p50_goal_ms = added_p50_goal_ms
        if self.load.warmup > 0:
            for server, reqs in sides:
                self.wrk(server, reqs, min(self.load.warmup, 2), rate=rate)
        for i in range(self.load.rounds):
            order = sides if i % 2 == 0 else sides[::-1]
            for server, reqs in order:
                result = self.wrk(server, reqs, self.load.duration, rate=rate)
                side = comparison.project if server is project else comparison.baseline
                side.rounds.append(result)
                print(
                    f"  round {i + 1}/{self.load.rounds} {server.name:<10} at {rate:.0f} req/s: "
                    f"{result.rps:>8.1f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p90 {result.p90_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                    f"cpu {result.cpu_us_per_request} us/req",
                    flush=True,
                )
        print(
            f"  {name}: at {rate:.0f} req/s added p50 {comparison.added_p50_ms:+.2f} ms, "
            f"added p99 {comparison.added_p99_ms:+.2f} ms",
            flush=True,
        )
        self.comparisons.append(comparison)
        return comparison

    def compare_paced_interleaved(
        self,
        baseline: Server,
        baseline_requests: RequestSet,
        hops: Sequence[PacedHop],
        *,
        rate: float,
        pairs: int,
        round_seconds: float,
    ) -> list[Comparison]:
        """Several layers in front of one baseline, all at the same fixed rate, in short rounds
        interleaved with the baseline's: B H1 H2 B H2 H1 B ... B (`pairs` cycles, the hops'
        order reversed every other cycle, a baseline round at both ends of each).

        The baseline's own p50 drifts by more between rounds seconds apart than a layer adds
        (a difference of medians of a few long rounds mostly measures that drift). So each hop
        round is paired with its neighbours: its p50 minus the mean p50 of the baseline rounds
        just before and after its cycle; the added p50 is the median of those paired
        differences (`Comparison.paired_p50_ms`). Returns one comparison per hop, in order;
        each hop's round i is in cycle i, so two hops can be paired with each other too.
        """
        sides = [(hop.server, hop.requests) for hop in hops]
        if self.load.warmup > 0:
            for server, reqs in [(baseline, baseline_requests), *sides]:
                self.wrk(server, reqs, min(self.load.warmup, 2), rate=rate)
        direct: list[WrkResult] = []
        runs: list[list[WrkResult]] = [[] for _ in hops]

        def measure(server: Server, reqs: RequestSet, label: str, cycle: int) -> WrkResult:
            result = self.wrk(server, reqs, round_seconds, rate=rate)
            print(
                f"  cycle {cycle + 1}/{pairs} {label:<10} at {rate:.0f} req/s: "
                f"{result.rps:>8.1f} req/s  p50 {result.p50_ms:6.2f} ms  "
                f"p90 {result.p90_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                f"cpu {result.cpu_us_per_request} us/req",
                flush=True,
            )
            return result

        for cycle in range(pairs):
            direct.append(measure(baseline, baseline_requests, baseline.name, cycle))
            order = list(range(len(hops)))
            for i in order if cycle % 2 == 0 else order[::-1]:
                runs[i].append(
                    measure(hops[i].server, hops[i].requests, hops[i].server.name, cycle)
                )
        direct.append(measure(baseline, baseline_requests, baseline.name, pairs - 1))

        out = []
        for hop, rounds in zip(hops, runs, strict=True):
            paired = [
                round(r.p50_ms - (direct[i].p50_ms + direct[i + 1].p50_ms) / 2, 3)
                for i, r in enumerate(rounds)
            ]
            comparison = Comparison(
                self.benchmark,
                hop.name,
                Side(hop.server.name, rounds),
                Side(baseline.name, list(direct)),
                rate=rate,
                added_p50_goal_ms=hop.added_p50_goal_ms,
                paired_p50_ms=paired,
            )
            print(
                f"  {hop.name}: at {rate:.0f} req/s added p50 {comparison.added_p50_ms:+.2f} ms "
                f"(median of {len(rounds)} paired rounds: {spread(paired)})",
                flush=True,
            )
            self.comparisons.append(comparison)
            out.append(comparison)
        return out

    def check(self, server: Server, requests: RequestSet) -> None:
        """One request by hand before the load: a fast error page must not pass for speed."""
        path, headers = requests.sample()
        if requests.method == "GET":
            status, body = server.get(path, headers)
        else:
            status, answer = call(server, requests.method, path, headers, requests.sample_body())
            body = str(answer).encode()
        if not 200 <= status < 300:
            raise RuntimeError(
                f"{server.name} answered {status} to {requests.method} {path}: {body[:300]!r}"
            )


# --- calling a server by hand (set-up steps of benchmarks) ---------------------------------


def call(
    server: Server,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None = None,
    timeout: float = 120,
) -> tuple[int, Any]:
    """One request; (status, parsed JSON or the error text)."""
    req = urllib.request.Request(  # noqa: S310
        server.url + path, data=body, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def login(gateway: Server, email: str, password: str) -> dict[str, str]:
    """Sign in through the gateway; the bearer header of that user."""
    form = urllib.parse.urlencode({"username": email, "password": password}).encode()
    status, body = call(
        gateway,
        "POST",
        "/api/v1/auth/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        form,
    )
    if status != 200:
        raise RuntimeError(f"login through the gateway failed: {status} {body}")
    return {"Authorization": f"Bearer {body['access_token']}"}
