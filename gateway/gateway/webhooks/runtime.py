"""What the webhooks feature shares within one gateway process (`app.state.webhooks`, made in
`hooks.webhooks_lifespan`): the address policy, the sender, and the workers when this process
delivers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.webhooks import metrics
from gateway.webhooks.addresses import AddressPolicy
from gateway.webhooks.sender import AttemptResult, Sender
from servicekit.clock import Clock

if TYPE_CHECKING:
    from gateway.webhooks.delivery import Dispatcher
    from gateway.webhooks.replays import ReplayRunner
    from servicekit.consumer import EventConsumer


@dataclass
class Webhooks:
    settings: Settings
    clock: Clock
    policy: AddressPolicy
    sender: Sender
    dispatcher: Dispatcher | None = None
    replays: ReplayRunner | None = None
    # The fan-out consumer of each feed.
    consumers: dict[str, EventConsumer] = field(default_factory=dict)
    # Whether the LISTEN connection that wakes the workers is up.
    listening: bool = False

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> AttemptResult:
        """One attempt, counted in the metrics."""
        result = await self.sender.send(url, headers, body)
        metrics.ATTEMPTS.labels(result.outcome).inc()
        metrics.ATTEMPT_SECONDS.labels(result.outcome).observe(result.duration_ms / 1000)
        return result

    def wake(self) -> None:
        """Something was queued (or a replay asked for): look now."""
        if self.dispatcher is not None:
            self.dispatcher.wake.set()
        if self.replays is not None:
            self.replays.wake.set()
