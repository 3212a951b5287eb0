"""Keeps `make run`'s processes up: one that stops is started again after a backoff, with a log
line, while the others keep serving. Everything is polled from the run's loop (`tick`), so a
Ctrl-C is never held up by a restart waiting for its turn."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Child:
    """One supervised process, as the launcher knows it."""

    name: str
    alive: Callable[[], bool]
    # Starts it again; raises when it could not be started (the next try comes later).
    start: Callable[[], object]
    # What became of it, for the log line: "exited with 1; see .run/logs/visits.log".
    how_it_ended: Callable[[], str]
    # What to say once it runs again, e.g. its new process id.
    how_it_runs: Callable[[], str] = lambda: "running again"


@dataclass
class _Watch:
    child: Child
    started_at: float
    failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """Restarts with an exponential backoff: `first_delay` after a crash, doubled for every
    crash that comes within `stable_after` seconds of the last start, up to `max_delay`."""

    def __init__(
        self,
        say: Callable[[str], None],
        *,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
        stable_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say = say
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.clock = clock
        self._watched: list[_Watch] = []

    def watch(self, child: Child) -> None:
        self._watched.append(_Watch(child, self.clock()))

    def _delay(self, failures: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2**failures))

    def tick(self) -> None:
        for w in self._watched:
            now = self.clock()
            if w.restart_at is None:
                if w.child.alive():
                    continue
                w.failures = w.failures + 1 if now - w.started_at < self.stable_after else 0
                delay = self._delay(w.failures)
                w.restart_at = now + delay
                self.say(f"{w.child.name} {w.child.how_it_ended()}; restarting in {delay:g}s")
            elif now >= w.restart_at:
                try:
                    w.child.start()
                except Exception as exc:
                    w.failures += 1
                    delay = self._delay(w.failures)
                    w.restart_at = self.clock() + delay
                    self.say(f"{w.child.name} did not start ({exc}); next try in {delay:g}s")
                else:
                    w.restart_at = None
                    w.started_at = self.clock()
                    self.say(f"{w.child.name} restarted: {w.child.how_it_runs()}")
