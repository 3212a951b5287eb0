"""App factory: `uvicorn --factory opportunities.main:create_app`.

Every feature is wired here, explicitly: its routers and the lifespan hooks that follow other
apps' feeds (customers: the index leads are matched against; visits: first contacts) and keep
the stalled list's usual times learned, and the directory reaction that hands a deactivated
rep's leads and opportunities on. Importing a feature registers nothing.
"""

from pathlib import Path

from fastapi import FastAPI

from opportunities.assignment.router import router as assignment_router
from opportunities.config import Settings
from opportunities.handover.service import on_identity_change
from opportunities.leads.hooks import follow_visits
from opportunities.leads.router import router as leads_router
from opportunities.matching.hooks import follow_customers
from opportunities.models import SCHEMA, directory
from opportunities.pipeline.hooks import learn_usual_times
from opportunities.pipeline.router import router as pipeline_router
from opportunities.scoring.router import router as scoring_router
from opportunities.sources.router import router as sources_router
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app

MIGRATIONS = Path(__file__).parent / "migrations"


TAGS = (
    {"name": "leads", "description": "Leads: intake, qualification, assignment, conversion"},
    {"name": "opportunities", "description": "The stage pipeline, its board and stalled list"},
    {"name": "scoring models", "description": "Versioned lead scoring, with calibration"},
    {"name": "assignment rules", "description": "Which team (and rep) a qualified lead goes to"},
    {"name": "lead sources", "description": "Where leads come from, what they cost and yield"},
)


def spec(settings: Settings | None = None) -> AppSpec:
    """`settings`: the app's (the reactions use its stages); the environment's by default."""
    return AppSpec(
        name="opportunities",
        schema=SCHEMA,
        title="Fieldforce opportunities",
        description="Lead intake, scoring, assignment and the stage pipeline.",
        migrations_dir=MIGRATIONS,
        # The fixed paths under /api/v1/leads first; the by-id paths take only UUIDs anyway.
        routers=[
            sources_router,
            assignment_router,
            leads_router,
            pipeline_router,
            scoring_router,
        ],
        hooks=[follow_customers, follow_visits, learn_usual_times],
        # Follows the gateway's identity feed into the kit's directory tables; a deactivated
        # rep's open leads go back through assignment, their open opportunities to their manager.
        directory=directory,
        identity_reactions=[on_identity_change(settings or Settings())],
        tags=TAGS,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(spec(settings), settings)
