"""The core customer archive: records, codes, history, levels, ownership, access, events.

Laid out as every feature is (docs/anatomy.md). Besides the standard files it keeps one module
per concern of its rules: `access.py` (who sees and changes which record), `ownership.py`,
`history.py`, `codes.py`, `levels.py` and `settings.py`; the normal forms duplicates are found
by are the kit's (`servicekit.normalize`), and users and teams come from the kit's directory
(`customers.models.directory`). Other features build on
`service.get_visible_customer` / `create_customers_bulk`, `repository.visibility_filter`,
`history.record_change`, and extend the archive through `extensions.ArchiveExtensions`, wired
in `customers.main`.
"""
