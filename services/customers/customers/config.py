"""Fieldforce customers settings (env prefix `CUSTOMERS_`; `DATABASE_URL` is shared)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings


class Settings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMERS_", extra="ignore")

    app_name: str = "customers"
