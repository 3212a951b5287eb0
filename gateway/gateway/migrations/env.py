from gateway.models import SCHEMA, metadata
from servicekit.migrations import run_env

run_env(metadata, SCHEMA)
