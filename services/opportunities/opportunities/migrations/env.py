import opportunities.assignment.models
import opportunities.leads.models
import opportunities.matching.models
import opportunities.pipeline.models
import opportunities.scoring.models
import opportunities.sources.models  # noqa: F401  (each feature's tables)
from opportunities.models import SCHEMA, metadata
from servicekit.migrations import run_env

run_env(metadata, SCHEMA)
