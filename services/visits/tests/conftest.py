"""Fixtures of the visits service tests: the app through the kit's harness, on a fresh copy of
the migrated template, its directory loaded with the standard organisation (`org`)."""

from servicekit.testing.harness import service_fixture
from visits.config import Settings
from visits.main import spec

visits = service_fixture("visits", spec, Settings)
