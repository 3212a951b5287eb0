"""App factory: `uvicorn --factory visits.main:create_app`.

Every feature is wired here, explicitly: its routers, and the lifespan hook that keeps the
read model of the customers feed. Importing a feature registers nothing.
"""

from pathlib import Path

from fastapi import FastAPI

from servicekit.app import AppSpec
from servicekit.app import create_app as build_app
from visits.cases.router import complaints_router, market_reports_router
from visits.config import Settings
from visits.customer_facts.hooks import follow_customers
from visits.daily.router import router as daily_router
from visits.followups.router import router as followups_router
from visits.models import SCHEMA, directory
from visits.plans.router import router as plans_router
from visits.visitlog.router import router as visits_router

MIGRATIONS = Path(__file__).parent / "migrations"


TAGS = (
    {"name": "visits", "description": "Visits: check-in, memo, follow-ups"},
    {"name": "visit plans", "description": "A rep's plan of visits, approved by the manager"},
    {"name": "daily reports", "description": "A rep's day, submitted and signed off"},
    {"name": "complaints", "description": "Customers' complaints, worked to a resolution"},
    {"name": "market reports", "description": "What reps see in the market, followed up"},
)


def spec() -> AppSpec:
    return AppSpec(
        name="visits",
        schema=SCHEMA,
        title="Fieldforce visits",
        description="Visit plans, visit logs, daily reports, market and complaint reports.",
        migrations_dir=MIGRATIONS,
        routers=[
            visits_router,
            followups_router,
            plans_router,
            daily_router,
            complaints_router,
            market_reports_router,
        ],
        # Users and teams (supervisors, a team tree's reps) from the gateway's identity feed.
        directory=directory,
        tags=TAGS,
        # The customers visits may be about: their owner, team, level, status and point.
        hooks=[follow_customers],
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())
