"""Fixtures of the opportunities service tests: the app through the kit's harness, on a fresh
copy of the migrated template, its directory loaded with the standard organisation (`org`)."""

from opportunities.config import Settings
from opportunities.main import spec
from servicekit.testing.harness import service_fixture

opportunities = service_fixture("opportunities", spec, Settings)
