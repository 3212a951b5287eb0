"""The gateway's `/readyz` also says how each service it routes to is doing.

- `ready`: the service's own `/readyz` answers 200 and says ready;
- `degraded`: it answers, and says a part of it is not working (a feed it cannot follow);
- `down`: it cannot be reached, does not answer in time, or says it is not ready (its database
  is away, its migrations are behind).

The gateway itself stays ready (200) whatever the services say: it still serves sign-in and
every service that is up; its status reads `degraded` while one of them is not ready.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from fastapi import FastAPI

from gateway.config import Settings
from gateway.routes import upstreams
from servicekit.app import Readiness

PROBE_TIMEOUT_SECONDS = 2.0


async def _probe(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    try:
        async with session.get(f"{base_url}/readyz") as answer:
            status = answer.status
            try:
                body = await answer.json(content_type=None)
            except ValueError:
                body = {}
    except TimeoutError:
        return {"status": "down", "detail": f"no answer within {PROBE_TIMEOUT_SECONDS:g} s"}
    except aiohttp.ClientError as exc:
        return {"status": "down", "detail": f"unreachable ({type(exc).__name__})"}
    said = body.get("status") if isinstance(body, dict) else None
    if status == 200 and said in ("ready", "degraded"):
        return {"status": said}
    detail = body.get("detail") if isinstance(body, dict) else None
    return {"status": "down", "detail": detail or f"/readyz answered {status}"}


async def services_readiness(app: FastAPI) -> Readiness:
    settings: Settings = app.state.settings
    targets = upstreams(settings)
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        found = await asyncio.gather(*(_probe(session, url) for url in targets.values()))
    services = dict(zip(targets, found, strict=True))
    degraded = any(s["status"] != "ready" for s in services.values())
    return Readiness({"services": services}, degraded=degraded)
