"""Fieldforce customers settings (env prefix `CUSTOMERS_`; `DATABASE_URL` is shared)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings


class Settings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMERS_", extra="ignore")

    app_name: str = "customers"
    # How often the service looks for what time changed: customers whose last order got too
    # old (dormant) and data-quality scores whose freshness points ran out.
    maintenance_interval_seconds: float = 900.0
