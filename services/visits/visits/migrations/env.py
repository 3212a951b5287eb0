from servicekit.migrations import run_env
from visits.models import SCHEMA, metadata

run_env(metadata, SCHEMA)
