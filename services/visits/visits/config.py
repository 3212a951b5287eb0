"""Fieldforce visits settings (env prefix `VISITS_`; `DATABASE_URL` is shared)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings


class Settings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="VISITS_", extra="ignore")

    app_name: str = "visits"
