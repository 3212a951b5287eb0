"""Normal forms of a company's name, phone, email and region, for telling records apart.

The customers service stores them beside every customer's raw values and finds likely
duplicates with them; the opportunities service matches incoming leads to customers with the
same forms and the same rule (`MatchKeys`). Kept once, here, so that both agree exactly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

_NON_DIGITS = re.compile(r"\D+")
# Legal-form words say nothing about which company it is: "Acme Ltd" and "ACME Co., Ltd."
# are the same customer. Longest first so that "有限公司" goes before "公司".
_COMPANY_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "集团",
    "公司",
    "corporation",
    "incorporated",
    "company",
    "limited",
    "gmbh",
    "corp",
    "inc",
    "ltd",
    "llc",
    "plc",
    "co",
)
_SUFFIX_RE = re.compile(
    r"(?:" + "|".join(re.escape(s) for s in _COMPANY_SUFFIXES) + r")$",
)


# The ASCII characters `str.isalnum` refuses (a name's ASCII fast path drops them).
_ASCII_NOT_ALNUM = bytes(c for c in range(128) if not chr(c).isalnum())


def normalize_phone(phone: str | None) -> str | None:
    """Digits only, without the +86/0086 country prefix: '+86 138-0013-8000' -> '13800138000'."""
    if not phone:
        return None
    # `\D` is what `isdecimal` is not (Unicode category Nd): a phone of digits only is kept.
    digits = phone if phone.isdecimal() else _NON_DIGITS.sub("", phone)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits or None


def normalize_email(email: str | None) -> str | None:
    if not email:
        return None
    value = email.strip().lower()
    return value or None


def normalize_name(name: str | None) -> str | None:
    """Case-, width- and punctuation-insensitive name without legal-form suffixes."""
    if not name:
        return None
    if name.isascii():
        # NFKC leaves ASCII as it is and casefold is lower(): the common case skips both, and
        # drops what is not a letter or digit in one pass over its bytes.
        value = name.encode().lower().translate(None, _ASCII_NOT_ALNUM).decode()
    else:
        value = unicodedata.normalize("NFKC", name).casefold()
        value = "".join(filter(str.isalnum, value))
    # Strip stacked suffixes ("co ltd" -> "coltd" -> ""), but never the whole name. The
    # value is letters and digits only, so `$` is its end: the pattern matches where it ends
    # with a suffix (`endswith`, in C, for the names that do not).
    while value.endswith(_COMPANY_SUFFIXES):
        stripped = _SUFFIX_RE.sub("", value)
        if stripped == value or not stripped:
            break
        value = stripped
    return value or None


@lru_cache(maxsize=4096)  # a handful of regions, seen thousands of times per import
def normalize_region(region: str) -> str:
    """Regions are classification keys and part of the code: trimmed, upper case."""
    return unicodedata.normalize("NFKC", region).strip().upper()


class MatchKeys(NamedTuple):
    """The normal forms one record is matched on. Two records match on the same phone, or the
    same email, or the same name in the same region. A tuple: a batch makes one per row, and
    a tuple is made in a third of a frozen dataclass's time."""

    phone: str | None
    email: str | None
    name: str | None
    region: str | None

    @classmethod
    def of(
        cls, name: str | None, phone: str | None, email: str | None, region: str | None
    ) -> MatchKeys:
        """The keys of raw values."""
        return cls(
            normalize_phone(phone),
            normalize_email(email),
            normalize_name(name),
            normalize_region(region) if region else None,
        )

    def matched_on(
        self, phone: str | None, email: str | None, name: str | None, region: str | None
    ) -> list[str]:
        """What another record, given by its normal forms, shares with this one."""
        matched = []
        if self.phone and phone == self.phone:
            matched.append("phone")
        if self.email and email == self.email:
            matched.append("email")
        if self.name and name == self.name and region == self.region:
            matched.append("name")
        return matched


def lookups(
    keys: Sequence[MatchKeys], *, ordered: bool = True
) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """What a batch's matches are looked up by: its distinct phones, emails and (region, name)
    pairs (a name matches only within a region), sorted unless not `ordered` (a statement
    that takes them as `= ANY(...)` arrays needs no order, and sorting a large batch's keys
    costs more than gathering them)."""
    phones = {k.phone for k in keys if k.phone}
    emails = {k.email for k in keys if k.email}
    pairs = {(k.region, k.name) for k in keys if k.name and k.region}
    if not ordered:
        return list(phones), list(emails), list(pairs)
    return sorted(phones), sorted(emails), sorted(pairs)
