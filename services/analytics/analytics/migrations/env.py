# Every feature's tables on the schema's metadata, for autogenerate.
import analytics.alerts.models
import analytics.facts.models
import analytics.rollups.models
import analytics.targets.models  # noqa: F401
from analytics.models import SCHEMA, metadata
from servicekit.migrations import run_env

run_env(metadata, SCHEMA)
