import customers.archive.models  # the archive: customers, history, ledger, settings, ...
import customers.commerce.models  # contacts, orders, payments
import customers.visitmemos.models  # noqa: F401  (the visits feed's memos)
from customers.models import SCHEMA, metadata
from servicekit.migrations import run_env

run_env(metadata, SCHEMA)
