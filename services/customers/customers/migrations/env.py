import customers.archive.models  # the archive: customers, history, ledger, settings, ...
import customers.commerce.models  # contacts, orders, payments
import customers.products.models  # noqa: F401  (the product catalogue)
from customers.models import SCHEMA, metadata
from servicekit.migrations import run_env

run_env(metadata, SCHEMA)
