"""Fixtures of the analytics service tests: the app through the kit's harness, on a fresh copy of
the migrated template, its directory loaded with the standard organisation (`org`)."""

from analytics.config import Settings
from analytics.main import spec
from servicekit.testing.harness import service_fixture

analytics = service_fixture("analytics", spec, Settings)
