"""The normal forms and match keys customers finds duplicates with and opportunities matches
leads with: both apps depend on these exact results."""

import random
import re
import unicodedata

from servicekit.normalize import (
    _COMPANY_SUFFIXES,
    _SUFFIX_RE,
    MatchKeys,
    lookups,
    normalize_name,
    normalize_phone,
)


def test_name_normal_form_is_the_same_on_the_ascii_fast_path():
    """ASCII names skip NFKC and casefold; they must land where the full path puts them
    (the first pair: a full-width spelling)."""
    same = [
        ("ACME Co., Ltd.", "\uff21\uff43\uff4d\uff45 \uff43\uff4f\uff0e\uff0c \uff2c\uff34\uff24"),
        ("Straße Trading GmbH", "STRASSE trading gmbh"),
        ("Imported 7-42 Holdings", "imported742holdings"),
    ]
    for a, b in same:
        assert normalize_name(a) == normalize_name(b) is not None, (a, b)
    assert normalize_name("ACME Co., Ltd.") == "acme"
    assert normalize_name("Co Ltd") == "co"  # never stripped to nothing
    assert normalize_name("上海有限公司") == "上海"
    assert normalize_name(" .,- ") is None
    # Each ASCII character is kept or dropped as the full path keeps or drops it.
    for code in range(128):
        name = f"a{chr(code)}Z"
        full = "".join(filter(str.isalnum, unicodedata.normalize("NFKC", name).casefold()))
        assert normalize_name(name) == full, code


def test_phone_loses_the_country_prefix():
    assert normalize_phone("+86 138-0013-8000") == normalize_phone("13800138000") == "13800138000"
    assert normalize_phone("0086 138 0013 8000") == "13800138000"
    assert normalize_phone("--") is None


def test_match_keys_match_on_phone_email_or_name_within_a_region():
    lead = MatchKeys.of("ACME Co., Ltd.", "+86 138-0013-8000", " Sales@Acme.CN ", " east ")
    assert lead == MatchKeys("13800138000", "sales@acme.cn", "acme", "EAST")
    assert lead.matched_on("13800138000", "sales@acme.cn", "acme", "EAST") == [
        "phone",
        "email",
        "name",
    ]
    # The same name in another region is another company; no keys, no match.
    assert lead.matched_on(None, None, "acme", "WEST") == []
    assert MatchKeys.of(None, None, None, None).matched_on(None, None, None, None) == []


def test_lookups_are_distinct_and_sorted_and_names_need_a_region():
    keys = [
        MatchKeys.of("Beta Ltd", "139 0000 0000", None, "north"),
        MatchKeys.of("Alpha", "139-0000-0000", "a@x.cn", None),
        MatchKeys.of("Alpha", None, "A@X.cn", "south"),
    ]
    phones, emails, pairs = lookups(keys)
    assert phones == ["13900000000"]
    assert emails == ["a@x.cn"]
    assert pairs == [("NORTH", "beta"), ("SOUTH", "alpha")]
    # Unordered: the same distinct keys, for a statement that needs no order.
    assert [sorted(found) for found in lookups(keys, ordered=False)] == [phones, emails, pairs]


def test_the_quick_checks_give_what_the_patterns_give():
    """A phone of digits only and a name without a legal-form suffix skip their regular
    expression: the result is the one the expression alone gives, on random text of digits,
    other decimal digits (Arabic-Indic, full-width), superscripts, letters and suffixes."""

    def phone_by_pattern(phone: str) -> str | None:
        digits = re.sub(r"\D+", "", phone)
        if digits.startswith("0086"):
            digits = digits[4:]
        elif digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        return digits or None

    def name_by_pattern(name: str) -> str | None:
        value = "".join(filter(str.isalnum, unicodedata.normalize("NFKC", name).casefold()))
        while True:
            stripped = _SUFFIX_RE.sub("", value)
            if stripped == value or not stripped:
                break
            value = stripped
        return value or None

    rng = random.Random(7)
    parts = ["0", "86", "0086", "138", "\u0661\u0662", "\uff11", "\u00b2", "-", " ", "+", "x"]
    words = [*_COMPANY_SUFFIXES, "acme", "Co.", " ", "7", "\u00b2", "\n", "LTD", "集团", "s"]
    for _ in range(3000):
        phone = "".join(rng.choice(parts) for _ in range(rng.randrange(1, 6)))
        assert normalize_phone(phone) == phone_by_pattern(phone), phone
        name = "".join(rng.choice(words) for _ in range(rng.randrange(1, 5)))
        assert normalize_name(name) == name_by_pattern(name), name
