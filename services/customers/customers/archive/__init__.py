"""The core customer archive: records, codes, history, levels, ownership, access, events.

The anatomy every feature package of every service copies (one file per role):

- `router.py`       thin HTTP: parse, call the service, shape the answer (ETag, Location, 202)
- `dependencies.py` Annotated aliases that return the 404/403 themselves (`VisibleCustomer`)
- `service.py`      the rules; flushes, never commits (`KitRoute` commits once per request)
- `repository.py`   queries (large batches by COPY, `servicekit.bulk`); `files.py` the
                    one-statement hot read of `GET /{id}`
- `models.py`       tables (SQLModel, UUID keys, aware timestamps); migrations by hand
- `schemas.py`      XCreate / XUpdate (all optional, exclude_unset) / XRead; tables are never
                    the input contract
- `exceptions.py`   domain exceptions carrying their status (kit base classes render them)
- `events.py`       event names and payload builders (facts a consumer needs, no call-back)
- `access.py`       who sees and changes which record: one rule for every sub-resource
- `codes.py`, `history.py`, `levels.py`, `ownership.py`, `settings.py`: one concern each
                    (users and teams come from the kit's directory, `customers.models.directory`)

Other features of this service (contacts, orders, data quality, import) build on the contract
exported here: `models.Customer`, `access.get_visible_customer` / `visibility_filter` /
`can_change`, `service.create_customer` / `create_customers_bulk` / `record_change`,
`normalize.*`, and the extension points in `extensions`.
"""
