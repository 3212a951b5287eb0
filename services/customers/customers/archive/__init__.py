"""The core customer archive: records, codes, history, levels, ownership, access, events.

Other features of this service (contacts, orders, data quality, import) build on the contract
exported here: `models.Customer`, `access.get_visible_customer` / `visibility_filter` /
`can_change`, `service.create_customer` / `create_customers_bulk` / `record_change`,
`normalize.*`, and the extension points in `extensions`.
"""
