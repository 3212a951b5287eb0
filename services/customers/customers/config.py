"""Fieldforce customers settings (env prefix `CUSTOMERS_`; `DATABASE_URL` is shared)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings


class Settings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMERS_", extra="ignore")

    app_name: str = "customers"
    # The gateway's public entry and the key this service reads the identity feed with; both
    # are set by the stack. Without them the identity consumer (deactivation handover) is off.
    gateway_url: str | None = Field(default=None, validation_alias="GATEWAY_URL")
    events_api_key: str | None = Field(default=None, validation_alias="EVENTS_API_KEY")
