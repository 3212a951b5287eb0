"""The next plan's own problems."""

from __future__ import annotations

from servicekit.errors import DomainError


class UpstreamFailed(DomainError):
    """The visits service answered in a way this app cannot turn into an answer of its own."""

    status, slug, title = 502, "bad-gateway", "Another service failed"
