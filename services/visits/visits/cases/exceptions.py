"""Errors of the market reports and complaints."""

from __future__ import annotations

import uuid

from servicekit.errors import Conflict, NotFound


class CaseNotFound(NotFound):
    """Also the answer for a case the caller may not see."""

    def __init__(self, noun: str, case_id: uuid.UUID) -> None:
        super().__init__(f"no {noun} {case_id}")


class WrongCaseState(Conflict):
    slug = "case-state"
    title = "Not possible in the case's state"
