"""The product catalogue: what order lines name by sku (admins write, everyone reads)."""
