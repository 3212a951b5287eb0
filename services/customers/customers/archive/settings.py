"""The archive's admin-managed settings, kept in the schema as one validated JSON document."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
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
from customers.archive.schemas import CustomerField, Region
from servicekit.auth import Principal
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.fields import Money, Omittable
from servicekit.normalize import normalize_region

Days = Annotated[int, Field(ge=1, le=366)]
DormantDays = Annotated[int, Field(ge=1, le=3660)]
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


# What a completeness score can count: the record's fields, and whether it has contacts.
SCORABLE_FIELDS = (
    "name",
    "region",
    "industry",
    "address",
    "phone",
    "email",
    "source",
    "tags",
    "estimated_potential",
    "contacts",
)
Points = Annotated[int, Field(ge=0, le=100)]


class DataQualitySettings(_Strict):
    """How complete a record is (0-100) and when it counts as incomplete.

    A present field earns its weight; a record changed within `fresh_days` earns
    `fresh_points`, within `recent_days` `recent_points` (only changes of its content count:
    fields and contacts, not a new owner or status). The weights and `fresh_points` add up to
    100. A record is incomplete when it misses a required field or scores under `threshold`.
    """

    weights: dict[str, Points] = Field(
        default_factory=lambda: {
            "name": 15,
            "region": 10,
            "phone": 15,
            "address": 10,
            "industry": 10,
            "email": 8,
            "estimated_potential": 8,
            "contacts": 6,
            "source": 4,
            "tags": 4,
        }
    )
    required: list[str] = Field(
        default_factory=lambda: ["name", "region", "phone", "address", "industry"]
    )
    recommended: list[str] = Field(
        default_factory=lambda: ["email", "estimated_potential", "contacts", "source", "tags"]
    )
    fresh_days: Days = 90
    fresh_points: Points = 10
    recent_days: Annotated[int, Field(ge=1, le=3660)] = 365
    recent_points: Points = 5
    threshold: Annotated[int, Field(ge=0, le=100)] = 70

    @model_validator(mode="after")
    def _consistent(self) -> DataQualitySettings:
        listed = [*self.required, *self.recommended]
        unknown = sorted({f for f in [*listed, *self.weights] if f not in SCORABLE_FIELDS})
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; use {list(SCORABLE_FIELDS)}")
        both = sorted(set(self.required) & set(self.recommended))
        if both:
            raise ValueError(f"{both} cannot be both required and recommended")
        if set(listed) != set(self.weights):
            raise ValueError("every weighted field is required or recommended, and vice versa")
        total = sum(self.weights.values()) + self.fresh_points
        if total != 100:
            raise ValueError(f"the weights and fresh_points add up to {total}, not 100")
        if self.recent_days < self.fresh_days or self.recent_points > self.fresh_points:
            raise ValueError("recent_days/points must not be fresher than fresh_days/points")
        self.required = list(dict.fromkeys(self.required))
        self.recommended = list(dict.fromkeys(self.recommended))
        return self

    def assess(
        self, present: Collection[str], content_updated_at: datetime, now: datetime
    ) -> dict[str, Any]:
        """The data-quality section of a record with the fields `present` (and "contacts"
        when it has some), as the quality feature computes and keeps it in SQL (for a record
        as it was at a past time, which nothing keeps)."""
        age = now - content_updated_at
        fresh = age <= timedelta(days=self.fresh_days)
        score = sum(points for field, points in self.weights.items() if field in present)
        if fresh:
            score += self.fresh_points
        elif age <= timedelta(days=self.recent_days):
            score += self.recent_points
        missing_required = [f for f in self.required if f not in present]
        return {
            "score": score,
            "incomplete": bool(missing_required) or score < self.threshold,
            "threshold": self.threshold,
            "missing_required": missing_required,
            "missing_recommended": [f for f in self.recommended if f not in present],
            "stale": not fresh,
            "content_updated_at": content_updated_at,
        }


def _code_pattern(value: Any) -> Any:
    # Before the type's pattern, so that a refusal says what is wrong (no {seq}, codes that
    # could collide) rather than quoting the regular expression.
    if isinstance(value, str):
        problem = codes.validate_pattern(value)
        if problem:
            raise ValueError(problem)
    return value


class ArchiveSettingsDoc(_Strict):
    code_pattern: CodePattern = Field(
        "{region}-{level}-{seq:06}",
        description="How new customers' codes are made, from {region}, {level}, {year} and "
        "{seq} (the number, gap-free per prefix), e.g. EAST-A-000123. A code is given once "
        "and never changes: the level in it is the level at creation. A pattern whose codes "
        "could collide ({region}{seq}: region A1 number 1 and region A number 11 both give "
        "A11) or that has no {seq} is refused.",
    )
    cadence_days: CadenceDays = CadenceDays()
    # Changes of these fields by a rep wait for a manager's approval.
    approval_fields: list[CustomerField] = Field(
        default_factory=lambda: [CustomerField.level, CustomerField.owner_id]
    )
    level_thresholds: LevelThresholds = LevelThresholds()
    pool: PoolLimits = PoolLimits()
    # Where a deactivated user's customers go.
    deactivated_handover: Handover = Handover.pool
    dormant_after_days: DormantDays = Field(
        180,
        description="A customer with at least one order and none for this many days becomes "
        "dormant; its next order makes it active again.",
    )
    regions: list[Region] | None = Field(
        None,
        description="The regions customers may be in (null: any). When set, an unknown "
        "region is refused.",
    )
    free_text_order_lines: bool = Field(
        False,
        description="Order lines may name products outside the catalogue (companies without "
        "one); otherwise every line names the sku of an active product.",
    )
    data_quality: DataQualitySettings = DataQualitySettings()

    @field_validator("code_pattern", mode="before")
    @classmethod
    def _pattern(cls, value: Any) -> Any:
        return _code_pattern(value)

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(map(normalize_region, value)))

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

    def unknown_region(self, region: str) -> str | None:
        """Why `region` (normalised) is refused, or None."""
        if self.regions is None or region in self.regions:
            return None
        return f"not one of the regions of the settings: {', '.join(self.regions)}"


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


class DataQualityChange(_Strict):
    """`weights` merge weight by weight; the lists replace."""

    weights: Omittable[dict[str, Points]] = None
    required: Omittable[list[str]] = None
    recommended: Omittable[list[str]] = None
    fresh_days: Omittable[Days] = None
    fresh_points: Omittable[Points] = None
    recent_days: Omittable[DormantDays] = None
    recent_points: Omittable[Points] = None
    threshold: Omittable[Points] = None


class ArchiveSettingsChange(_Strict):
    """A PATCH of the settings: only what is sent changes, objects key by key."""

    code_pattern: Omittable[CodePattern] = None
    cadence_days: Omittable[CadenceDaysChange] = None
    approval_fields: Omittable[list[CustomerField]] = None
    level_thresholds: Omittable[LevelThresholdsChange] = None
    pool: Omittable[PoolLimitsChange] = None
    deactivated_handover: Omittable[Handover] = None
    dormant_after_days: Omittable[DormantDays] = None
    # null = customers may be in any region
    regions: list[Region] | None = None
    free_text_order_lines: Omittable[bool] = None
    data_quality: Omittable[DataQualityChange] = None

    @field_validator("code_pattern", mode="before")
    @classmethod
    def _pattern(cls, value: Any) -> Any:
        return _code_pattern(value)

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
