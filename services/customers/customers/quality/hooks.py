"""Quality's parts of the archive: the data-quality section of the full file and the duplicate
finder used on create (the same rule the import applies to a whole batch)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import extensions
from customers.archive.schemas import CustomerRead
from customers.quality.duplicates import find_duplicates
from customers.quality.scoring import data_quality
from servicekit.auth import Principal


async def _file_data_quality(session: AsyncSession, _: Principal, c: CustomerRead) -> Any:
    return (await data_quality(session, c)).model_dump(mode="json")


def register() -> None:
    extensions.file_sections.register("data_quality", _file_data_quality)
    extensions.set_duplicate_finder(find_duplicates)


register()
