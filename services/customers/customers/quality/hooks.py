"""Quality's parts of the archive: the data-quality section of the full file and the duplicate
finder used on create (the same rule the import applies to a whole batch)."""

from __future__ import annotations

from customers.archive import extensions
from customers.quality import scoring
from customers.quality.duplicates import find_duplicates


def register() -> None:
    # In the full file's one statement, like commerce's sections.
    extensions.file_sql_sections.register("data_quality", scoring.section_sql)
    extensions.set_duplicate_finder(find_duplicates)


register()
