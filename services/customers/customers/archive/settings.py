"""The archive's admin-managed settings, kept in the schema as one validated JSON document."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import codes, events, repository
from customers.archive.access import require_read
from customers.archive.schemas import CustomerField
from servicekit.auth import Principal
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.fields import Money, Omittable

Days = Annotated[int, Field(ge=1, le=366)]
# Literal text and {region}, {level}, {year} around exactly one {seq} (zero-padded with :0N).
_LITERAL = r"[A-Za-z0-9 _./#-]*"
_PART = r"\{(region|level|year)\}" + _LITERAL
CODE_PATTERN = rf"^{_LITERAL}({_PART})*\{{seq(:0?[1-9])?\}}{_LITERAL}({_PART})*$"
CodePattern = Annotated[
    str,
    StringConstraints(max_length=60, pattern=CODE_PATTERN),
    Field(description="How codes are written, e.g. {region}-{level}-{seq:06}"),
]
# "owner" is what people say; the field is owner_id.
_FIELD_ALIASES = {"owner": "owner_id"}


class Handover(StrEnum):
    """Where a deactivated rep's customers go: the pool, or their team's manager."""

    pool = "pool"
    manager = "manager"


def _field_aliases(value: Any) -> Any:
    if isinstance(value, list):
        return [_FIELD_ALIASES.get(n, n) if isinstance(n, str) else n for n in value]
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CadenceDays(_Strict):
    A: Days = 7
    B: Days = 14
    C: Days = 30


class LevelThreshold(_Strict):
    """A customer reaches the level when either figure reaches its threshold."""

    purchases_12m: Money
    estimated_potential: Money


class LevelThresholds(_Strict):
    A: LevelThreshold = LevelThreshold(
        purchases_12m=Decimal("500000"), estimated_potential=Decimal("1000000")
    )
    B: LevelThreshold = LevelThreshold(
        purchases_12m=Decimal("100000"), estimated_potential=Decimal("200000")
    )

    @model_validator(mode="after")
    def _a_above_b(self) -> LevelThresholds:
        if (
            self.A.purchases_12m < self.B.purchases_12m
            or self.A.estimated_potential < self.B.estimated_potential
        ):
            raise ValueError("level A thresholds must not be below level B's")
        return self


class PoolLimits(_Strict):
    # null = no limit
    max_customers_per_rep: Annotated[int, Field(ge=1)] | None = 300
    claims_per_day: Annotated[int, Field(ge=1)] | None = 10


class ArchiveSettingsDoc(_Strict):
    code_pattern: CodePattern = "{region}-{seq:06}"
    cadence_days: CadenceDays = CadenceDays()
    # Changes of these fields by a rep wait for a manager's approval.
    approval_fields: list[CustomerField] = Field(
        default_factory=lambda: [CustomerField.level, CustomerField.owner_id]
    )
    level_thresholds: LevelThresholds = LevelThresholds()
    pool: PoolLimits = PoolLimits()
    # Where a deactivated user's customers go.
    deactivated_handover: Handover = Handover.pool

    @field_validator("code_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        problem = codes.validate_pattern(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("approval_fields", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        return _field_aliases(value)

    @field_validator("approval_fields")
    @classmethod
    def _unique(cls, value: list[CustomerField]) -> list[CustomerField]:
        return list(dict.fromkeys(value))

    def cadence(self, level: str) -> int:
        return int(getattr(self.cadence_days, level))


DEFAULTS = ArchiveSettingsDoc()


class CadenceDaysChange(_Strict):
    A: Omittable[Days] = None
    B: Omittable[Days] = None
    C: Omittable[Days] = None


class LevelThresholdChange(_Strict):
    purchases_12m: Omittable[Money] = None
    estimated_potential: Omittable[Money] = None


class LevelThresholdsChange(_Strict):
    A: Omittable[LevelThresholdChange] = None
    B: Omittable[LevelThresholdChange] = None


class PoolLimitsChange(_Strict):
    # null = no limit
    max_customers_per_rep: Annotated[int, Field(ge=1)] | None = None
    claims_per_day: Annotated[int, Field(ge=1)] | None = None


class ArchiveSettingsChange(_Strict):
    """A PATCH of the settings: only what is sent changes, objects key by key."""

    code_pattern: Omittable[CodePattern] = None
    cadence_days: Omittable[CadenceDaysChange] = None
    approval_fields: Omittable[list[CustomerField]] = None
    level_thresholds: Omittable[LevelThresholdsChange] = None
    pool: Omittable[PoolLimitsChange] = None
    deactivated_handover: Omittable[Handover] = None

    @field_validator("approval_fields", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        return _field_aliases(value)


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def changed(doc: ArchiveSettingsDoc, change: dict[str, Any]) -> ArchiveSettingsDoc:
    """The settings with `change` merged in: objects merge key by key, any other value (null
    included: it means "no limit" in `pool`) replaces; the result is validated as a whole."""
    try:
        return ArchiveSettingsDoc.model_validate(_merge(doc.model_dump(mode="json"), change))
    except ValidationError as exc:
        errors = [
            {"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise ValidationFailed("the settings would not be valid", errors=errors) from None


async def read(session: AsyncSession, principal: Principal) -> tuple[ArchiveSettingsDoc, int]:
    """The settings and their version, for anyone who reads customers."""
    require_read(principal)
    return await load(session)


async def for_change(session: AsyncSession, principal: Principal) -> tuple[ArchiveSettingsDoc, int]:
    """The settings and their version, about to be changed: admins only."""
    if principal.kind != "user" or not principal.is_admin:
        raise Forbidden("only admins change the customer settings")
    return await load(session)


async def load(session: AsyncSession) -> tuple[ArchiveSettingsDoc, int]:
    """The settings and their version (0 while the admins never saved any)."""
    row = await repository.settings_row(session)
    if row is None:
        return DEFAULTS, 0
    return from_json(row.data), int(row.version)


def from_json(data: Any) -> ArchiveSettingsDoc:
    """The document as stored (None: never saved)."""
    return DEFAULTS if data is None else ArchiveSettingsDoc.model_validate(data)


async def save(session: AsyncSession, doc: ArchiveSettingsDoc, actor_id: str | None) -> int:
    """Store the settings and announce them (`customer_settings.changed`, with the cadence per
    level other apps plan follow-ups by); the new version."""
    saved = doc.model_dump(mode="json")
    version = await repository.save_settings(session, saved, actor_id)
    await events.emit(
        session, events.SETTINGS_CHANGED, None, events.settings_changed(saved, version, actor_id)
    )
    return version
