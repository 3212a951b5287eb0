"""Users' expected failures."""

from __future__ import annotations

import uuid

from servicekit.errors import Conflict, NotFound


class UserNotFound(NotFound):
    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__(f"no user {user_id}")


class EmailTaken(Conflict):
    def __init__(self, email: str) -> None:
        super().__init__(f"a user with the email {email!r} already exists")


class LastAdmin(Conflict):
    def __init__(self) -> None:
        super().__init__("this is the last active admin; make another admin first")
