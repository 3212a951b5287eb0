import gateway.identity.models  # noqa: F401  (registers the identity tables on the metadata)
from gateway.models import SCHEMA, metadata
from gateway.ratelimit import rate_limit_counters  # noqa: F401  (so autogenerate keeps it)
from gateway.webhooks import models as _webhook_models  # noqa: F401  (the webhook tables)
from servicekit.migrations import run_env

run_env(metadata, SCHEMA)
