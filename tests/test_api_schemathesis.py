"""Schemathesis, every check, over every public operation of a running stack: as an admin and
as a rep, zero server errors and zero violations of the API document.

The stack is this module's own: the run signs in with wrong passwords (locking the address
out of sign-in for minutes), changes and deactivates what it finds, and sends far more than a
rep's rate limit, none of which the tests sharing the session's stack could live with. What
is knowingly not met is listed, with the reasons, in `schemathesis.toml` beside this file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, login, organisation, running_stack
from fieldforce.stack import Stack
from servicekit.testing.plugin import Databases
from servicekit.testing.tokens import TokenMinter

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Every check runs but those the config turns off, with its reasons (`enabled = false`).
OFF = sorted(
    name
    for name, check in tomllib.loads(CONFIG.read_text())["checks"].items()
    if isinstance(check, dict) and check.get("enabled") is False
)
PASSWORD = "contract-" + "p" * 12
# Cases per operation and phase, and the seed, kept small enough for `make test` (the run's
# time is in bench/README.md); the environment can ask for a deeper run or other cases.
MAX_EXAMPLES = int(os.environ.get("FIELDFORCE_SCHEMATHESIS_EXAMPLES", "3"))
SEED = os.environ.get("FIELDFORCE_SCHEMATHESIS_SEED", "20261202")
# Users are not rate limited here: the run sends a rep's minute of calls in seconds. The
# anonymous limit stays, and its 429s are part of what is checked.
UNLIMITED = {f"GATEWAY_RATE_LIMIT_{role}": "1000000/60" for role in ("ADMIN", "MANAGER", "REP")}


@pytest.fixture(scope="module")
def contract_stack(
    databases: Databases,
    fieldforce_template: str,
    minter: TokenMinter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("contract-stack-logs")
    with running_stack(databases, fieldforce_template, minter, log_dir, UNLIMITED) as stack:
        yield stack


def schemathesis(url: str, token: str, logout_token: str, workdir: Path) -> tuple[int, str]:
    env = {
        **os.environ,
        "FIELDFORCE_TOKEN": token,
        "FIELDFORCE_LOGOUT_TOKEN": logout_token,
        "NO_COLOR": "1",
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(OFF),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--no-color",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=workdir, timeout=600, check=False
    )
    return done.returncode, done.stdout + done.stderr


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _failures(output: str) -> str:
    """What failed and the summary, without the warnings between them (which can be long)."""
    start = output.find("= FAILURES =")
    warnings = output.find("= WARNINGS =")
    summary = output.find("= SUMMARY =")
    failed = output[start : warnings if warnings > start else summary] if start >= 0 else ""
    return (failed[:30000] + "\n" + output[summary:]) if summary >= 0 else output[-30000:]


@pytest.mark.long
@pytest.mark.timeout(900)
async def test_every_operation_as_admin_and_as_rep_holds_to_the_document(
    contract_stack: Stack, tmp_path: Path
) -> None:
    url = contract_stack.running["gateway"].url
    async with httpx.AsyncClient(base_url=url, timeout=30) as gw:
        org = await organisation(gw, (ADMIN_EMAIL, ADMIN_PASSWORD), PASSWORD)
        rep = org["users"]["rep_a"]["email"]
        # Something to read: a customer of the rep's, with an order and a contact.
        created = await gw.post(
            "/api/v1/customers",
            json={"name": "Schemathesis Ltd", "region": "EAST", "contacts": [{"name": "Li"}]},
            headers=org["h"]["rep_a"],
        )
        assert created.status_code == 201, created.text
        order = await gw.post(
            f"/api/v1/customers/{created.json()['id']}/orders",
            json={"order_date": "2026-01-05", "amount": "120.00"},
            headers=org["h"]["rep_a"],
        )
        assert order.status_code == 201, order.text
        # The rep first: the admin's run changes users and teams, the rep's among them.
        runs = {
            "rep": (_token(org["h"]["rep_a"]), _token(await login(gw, rep, PASSWORD))),
            "admin": (_token(org["admin"]), _token(await login(gw, ADMIN_EMAIL, ADMIN_PASSWORD))),
        }
    failures = []
    for role, (token, logout_token) in runs.items():
        started = time.monotonic()
        code, output = await asyncio.to_thread(schemathesis, url, token, logout_token, tmp_path)
        elapsed = time.monotonic() - started
        print(f"schemathesis as {role}: exit {code} in {elapsed:.0f} s")
        if code != 0:
            failures.append(f"--- as {role} (seed {SEED}) ---\n{_failures(output)}")
    assert not failures, "\n".join(failures)
