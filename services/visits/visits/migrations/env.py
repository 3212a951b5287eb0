# Every feature's tables on the schema's metadata, for autogenerate.
import visits.cases.models
import visits.customer_facts.models
import visits.daily.models
import visits.plans.models
import visits.visitlog.models  # noqa: F401
from servicekit.migrations import run_env
from visits.models import SCHEMA, metadata

run_env(metadata, SCHEMA)
