"""Errors of the daily reports."""

from __future__ import annotations

import uuid

from servicekit.errors import Conflict, NotFound


class ReportNotFound(NotFound):
    """Also the answer for a report the caller may not see."""

    def __init__(self, report_id: uuid.UUID) -> None:
        super().__init__(f"no daily report {report_id}")


class ReportExists(Conflict):
    slug = "report-exists"
    title = "The rep already reported that day"

    def __init__(self, existing_id: uuid.UUID | None) -> None:
        super().__init__(
            "one report per rep per day: change the returned one and submit it again",
            existing_id=existing_id,
        )


class WrongReportState(Conflict):
    slug = "report-state"
    title = "Not possible in the report's state"
