from servicekit.migrations import run_env
from servicekit.testing.sample.app import SCHEMA, metadata

run_env(metadata, SCHEMA)
