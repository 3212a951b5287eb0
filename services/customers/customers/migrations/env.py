import customers.archive.models  # the archive: customers, history, ledger, settings, ...
import customers.commerce.models  # noqa: F401  (contacts, orders, payments)
from customers.models import SCHEMA, metadata
from servicekit.migrations import run_env

run_env(metadata, SCHEMA)
