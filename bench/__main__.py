"""`python -m bench [names...]`: run all benchmark modules, or the ones named.

A benchmark module is any module of this package with a `run(ctx)` function (see
bench/README.md). The summary table is printed at the end and written as JSON to
bench/results/.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

import bench
from bench.harness import RESULTS_DIR, Context, LoadSettings, ensure_wrk


def discover() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "run", None)):
            found[info.name] = module
    return found


def _fmt_ms(value: float) -> str:
    return f"{value:.2f}"


def print_summary(ctx: Context, failures: dict[str, str]) -> None:
    header = (
        f"{'benchmark':<28} {'side':<9} {'server':<10} {'req/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'cpu us':>7} {'errors':>6} {'ratio':>6} {'cpu r.':>6} {'goal':>6}"
    )
    print("\n" + "=" * len(header))
    print(header)
    print("-" * len(header))
    for c in ctx.comparisons:
        title = f"{c.benchmark}/{c.name}"
        for label, side in (("project", c.project), ("baseline", c.baseline)):
            s = side.summary()
            tail = ""
            if label == "project":
                goal = "" if c.goal is None else f"{c.goal:.2f}"
                verdict = {None: "", True: "  ok", False: "  MISSED"}[c.met]
                cpu_ratio = "" if c.cpu_ratio is None else f"{c.cpu_ratio:.3f}"
                tail = f" {c.ratio:>6.3f} {cpu_ratio:>6} {goal:>6}{verdict}"
            cpu = "" if s["cpu_us_per_request"] is None else f"{s['cpu_us_per_request']:.0f}"
            print(
                f"{title:<28} {label:<9} {side.server:<10} {s['rps']:>9.1f} "
                f"{_fmt_ms(s['p50_ms']):>8} {_fmt_ms(s['p99_ms']):>8} {cpu:>7} "
                f"{s['errors']:>6}{tail}"
            )
            title = ""
    for name, error in failures.items():
        print(f"{name:<28} FAILED: {error.strip().splitlines()[-1]}")
    print("=" * len(header))
    print(
        "ratio: project/baseline req/s (medians of the rounds; the goal applies to it). "
        "cpu r.: baseline/project server CPU per request, steadier on a busy machine."
    )


def write_results(ctx: Context, failures: dict[str, str], started: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    report = {
        "started": started,
        "python": sys.version.split()[0],
        "load": asdict(ctx.load),
        "comparisons": [c.to_json() for c in ctx.comparisons],
        "failures": failures,
    }
    path = RESULTS_DIR / f"{started.replace(':', '').replace('-', '')}.json"
    text = json.dumps(report, indent=2)
    path.write_text(text)
    (RESULTS_DIR / "latest.json").write_text(text)
    return path


def main(argv: list[str]) -> int:
    modules = discover()
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print("available:", " ".join(modules))
        return 0
    unknown = [a for a in argv if a not in modules]
    if unknown:
        print(f"bench: unknown benchmark(s) {unknown}; available: {' '.join(modules)}")
        return 2
    chosen = argv or list(modules)
    load = LoadSettings.from_env()
    wrk = ensure_wrk()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(
        f"bench: {' '.join(chosen)} — {load.rounds} round(s) of {load.duration:g} s per side "
        f"after {load.warmup:g} s warm-up, {load.connections} connections, {load.threads} threads"
    )
    failures: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="fieldforce-bench-") as tmp,
        Context(load, Path(tmp), wrk) as ctx,
    ):
        for name in chosen:
            print(f"\n[{name}] {(modules[name].__doc__ or '').strip().splitlines()[0]}")
            ctx.benchmark = name
            try:
                modules[name].run(ctx)
            except Exception:
                failures[name] = traceback.format_exc()
                print(failures[name], file=sys.stderr)
            finally:
                ctx.stop_servers()
    print_summary(ctx, failures)
    path = write_results(ctx, failures, started)
    print(f"results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    if failures:
        return 1
    if any(c.met is False for c in ctx.comparisons) and _strict():
        return 1
    return 0


def _strict() -> bool:
    return os.environ.get("BENCH_STRICT", "") not in ("", "0")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
