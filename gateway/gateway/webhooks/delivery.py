"""The delivery worker: each endpoint's queue sent in order, by one worker at a time.

Every gateway process runs one `Dispatcher` (unless `GATEWAY_WEBHOOK_DELIVERY_ENABLED` is off).
It claims endpoints whose queue head is due (`FOR UPDATE SKIP LOCKED`, then a lease with a
fresh token, committed at once), and for each sends the head, records what came of it, and goes
on with the next, renewing the lease each time. Nothing is held open across the HTTP call:
the claim, reading the head and recording the attempt are short units of work of their own.

- Several replicas: an endpoint is leased by one of them at a time, so each delivery is sent by
  one worker, and in the queue's order.
- A crash (or a kill) mid-delivery: the lease runs out (`GATEWAY_WEBHOOK_LEASE_SECONDS`) and any
  worker takes the endpoint over and sends the unacknowledged head again, with the same
  `Webhook-Id`. A delivery recorded as delivered is never sent again; one that was received but
  not yet recorded may be (at least once: receivers dedupe on `Webhook-Id`).
- A worker whose lease ran out while it was sending records nothing (the token no longer
  matches); the new holder's attempt is the one logged.
- Failures are retried on the schedule (schedule.py); after the last retry the delivery is
  failed and the queue goes on. An endpoint whose every attempt has failed for
  `GATEWAY_WEBHOOK_DISABLE_AFTER_SECONDS` is disabled, with a `webhook.disabled` event on the
  gateway's own feed; its queue waits until it is turned on again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from gateway.config import Settings
from gateway.identity.audit import service as audit
from gateway.webhooks import events, metrics, repository
from gateway.webhooks.models import DELIVERED, FAILED, PENDING
from gateway.webhooks.runtime import Webhooks
from gateway.webhooks.schedule import retry_delay
from gateway.webhooks.sender import AttemptResult
from gateway.webhooks.signatures import headers, signing_secrets
from servicekit.clock import Clock
from servicekit.db import Database
from servicekit.outbox import record_event

log = logging.getLogger("gateway.webhooks")
_ERROR_BACKOFF_SECONDS = 1.0


class Dispatcher:
    def __init__(self, db: Database, webhooks: Webhooks, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.webhooks = webhooks
        self.clock = clock
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)
        self.schedule = tuple(settings.webhook_retry_schedule_seconds)
        self.disable_after = timedelta(seconds=settings.webhook_disable_after_seconds)
        self.concurrency = max(1, settings.webhook_concurrency)
        self.poll = settings.webhook_poll_seconds
        self.wake = asyncio.Event()
        # Lease token -> (endpoint, the task sending its queue under that lease).
        self._serving: dict[uuid.UUID, tuple[uuid.UUID, asyncio.Task[None]]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhooks:dispatcher")

    async def stop(self) -> None:
        """Stop sending and hand the leases back, so another replica goes on at once."""
        tasks = [t for t in (self._task, *(t for _, t in self._serving.values())) if t]
        leases = [(endpoint_id, token) for token, (endpoint_id, _) in self._serving.items()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if leases:
            with contextlib.suppress(Exception):
                async with self.db.session() as session:
                    await repository.release(session, leases)

    # -- the loop: claim what is due, then wait until something is -------------------------------
    async def _run(self) -> None:
        while True:
            self.wake.clear()
            try:
                until = await self._claim_and_plan()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook delivery: %s: %s", type(exc).__name__, exc)
                until = self.clock.now() + timedelta(seconds=_ERROR_BACKOFF_SECONDS)
            # From the time now, not the time the plan began: the clock may have moved since.
            wait = (until - self.clock.now()).total_seconds()
            await self.clock.wait(self.wake, max(0.0, wait))

    async def _claim_and_plan(self) -> datetime:
        """Claim what is due; when to look again (the next due time, at most a poll away)."""
        now = self.clock.now()
        free = self.concurrency - len(self._serving)
        if free > 0:
            async with self.db.session() as session:
                claimed = await repository.claim(session, now, now + self.lease, free)
            for endpoint_id, token in claimed:
                task = asyncio.create_task(
                    self._serve(endpoint_id, token), name=f"webhooks:{endpoint_id}"
                )
                self._serving[token] = (endpoint_id, task)
        async with self.db.session() as session:
            due = await repository.next_due(session, now)
        polled = now + timedelta(seconds=self.poll)
        return polled if due is None else min(due, polled)

    # -- one endpoint's queue ----------------------------------------------------------------
    async def _serve(self, endpoint_id: uuid.UUID, token: uuid.UUID) -> None:
        held = True
        try:
            while True:
                async with self.db.session() as session:
                    job = await repository.head(session, endpoint_id, token)
                if job is None or job.next_attempt_at > self.clock.now():
                    break
                started = self.clock.now()
                result = await self._attempt(job)
                held = await self._record(endpoint_id, token, job, started, result)
                if not held:
                    log.info("webhook %s: the lease ran out while sending", endpoint_id)
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("webhook %s: %s: %s", endpoint_id, type(exc).__name__, exc)
        finally:
            self._serving.pop(token, None)
            self.wake.set()
        if held:
            with contextlib.suppress(Exception):
                async with self.db.session() as session:
                    await repository.release(session, [(endpoint_id, token)])
            self.wake.set()

    async def _attempt(self, job: Any) -> AttemptResult:
        now = self.clock.now()
        secrets = signing_secrets(
            job.secret, job.previous_secret, job.previous_secret_expires_at, now
        )
        body: bytes = job.body
        sent = headers(secrets, str(job.event_id), int(self.clock.timestamp()), body)
        return await self.webhooks.send(job.url, sent, body)

    async def _record(
        self,
        endpoint_id: uuid.UUID,
        token: uuid.UUID,
        job: Any,
        started: datetime,
        result: AttemptResult,
    ) -> bool:
        """The attempt, the delivery's new state and the endpoint's health, in one unit of
        work, if the lease still holds; whether it did."""
        now = self.clock.now()
        async with self.db.session() as session:
            lease = await repository.renew(session, endpoint_id, token, now + self.lease)
            if lease is None:
                return False
            await repository.add_attempt(session, job.delivery_id, started, result)
            attempts = job.attempts + 1
            if result.success:
                await repository.set_delivery(
                    session,
                    job.delivery_id,
                    state=DELIVERED,
                    attempts=attempts,
                    next_attempt_at=job.next_attempt_at,
                    finished_at=now,
                )
                await repository.set_health(
                    session, endpoint_id, failing_since=None, last_success_at=now
                )
                metrics.DELIVERIES.labels(DELIVERED).inc()
                return True
            delay = retry_delay(attempts, self.schedule)
            await repository.set_delivery(
                session,
                job.delivery_id,
                state=PENDING if delay is not None else FAILED,
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=delay or 0),
                finished_at=None if delay is not None else now,
            )
            if delay is None:
                metrics.DELIVERIES.labels(FAILED).inc()
            failing_since: datetime = lease.failing_since or started
            if lease.failing_since is None:
                await repository.set_health(session, endpoint_id, failing_since=started)
            if now - failing_since >= self.disable_after:
                await self._disable(session, endpoint_id, failing_since, now)
        return True

    async def _disable(
        self, session: Any, endpoint_id: uuid.UUID, failing_since: datetime, now: datetime
    ) -> None:
        days = (now - failing_since).total_seconds() / 86400
        reason = f"every attempt failed for {days:.1f} days"
        await repository.disable(session, endpoint_id, now, reason)
        data = events.disabled_data(endpoint_id, reason, failing_since)
        await record_event(session, events.WEBHOOK_DISABLED, endpoint_id, data)
        audit.record(
            session,
            "webhook.disabled",
            None,
            subject_type="webhook",
            subject_id=endpoint_id,
            detail={"reason": reason},
        )
        metrics.DISABLED.inc()
        log.warning("webhook %s disabled: %s", endpoint_id, reason)
