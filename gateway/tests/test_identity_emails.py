"""One spelling for one look (identity/emails.py): NFKC-normalised addresses, and no
invisible or mixed-script twins, on creation, on change and on sign-in; real HTTP."""

from __future__ import annotations

import pytest

from gateway.identity.emails import email_key, normalize_email

from .conftest import Api, assert_problem

PASSWORD = "correct-horse-battery"
# The twins of r1@example.com, written with escapes so that the source shows what they are.
FULL_WIDTH = "\uff52\uff11@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.\uff43\uff4f\uff4d"
CYRILLIC_DOMAIN = "r1@\u0435x\u0430mple.com"  # Cyrillic ie and a
CYRILLIC_LOCAL = "\u04331@example.com"  # Cyrillic ghe, a look-alike of r
GREEK_LOCAL = "r\u03b9@example.com"  # Greek iota
ZERO_WIDTH = "r\u200b1@example.com"
JOINER = "r1\u200d@example.com"
BIDI = "r1@example.com\u202e"
SOFT_HYPHEN = "r1@exam\u00adple.com"
HANGUL_FILLER = "\u3164r1@example.com"
VARIATION = "r1\ufe0f@example.com"
NUL = "r1\x00@example.com"
TWINS = [
    CYRILLIC_DOMAIN,
    CYRILLIC_LOCAL,
    GREEK_LOCAL,
    ZERO_WIDTH,
    JOINER,
    BIDI,
    SOFT_HYPHEN,
    HANGUL_FILLER,
    VARIATION,
    NUL,
]


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("r1@example.com", "r1@example.com"),
        (FULL_WIDTH, "r1@example.com"),
        ("  Rick@Example.COM ", "Rick@Example.COM"),
        ("\ufb01le@example.com", "file@example.com"),  # the fi ligature
        ("de\u0301j\u00e0@example.com", "d\u00e9j\u00e0@example.com"),  # composed
        ("\u5f20\u4e09@example.com", "\u5f20\u4e09@example.com"),  # Han with Latin
        ("\u3084\u307e\u30c0@\u4f8b\u3048.jp", "\u3084\u307e\u30c0@\u4f8b\u3048.jp"),  # kana, Han
        ("\ud64d@\uc608\uc2dc.kr", "\ud64d@\uc608\uc2dc.kr"),  # Hangul with Latin
        ("\u0438\u0432\u0430\u043d@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", None),
    ],
)
def test_kept_spellings(typed: str, kept: str | None) -> None:
    assert normalize_email(typed) == (kept or typed)


@pytest.mark.parametrize("twin", TWINS)
def test_twins_are_refused(twin: str) -> None:
    with pytest.raises(ValueError, match=r"invisible|scripts"):
        normalize_email(twin)


def test_the_key_ignores_case() -> None:
    assert email_key(FULL_WIDTH.upper()) == email_key("R1@example.com") == "r1@example.com"


async def create(api: Api, admin: dict[str, str], email: str, name: str = "R1"):
    return await api.client.post(
        "/api/v1/users",
        json={"email": email, "name": name, "role": "rep", "password": PASSWORD},
        headers=admin,
    )


async def test_lookalike_addresses_cannot_be_two_accounts(api: Api) -> None:
    admin = await api.admin()
    first = await create(api, admin, "r1@example.com")
    assert first.status_code == 201, first.text
    # The full-width spelling is the same address, so the same account.
    again = await create(api, admin, FULL_WIDTH)
    assert "already exists" in assert_problem(again, 409)["detail"]
    for twin in TWINS:
        problem = assert_problem(await create(api, admin, twin), 422)
        assert [e["loc"][-1] for e in problem["errors"]] == ["email"], (twin, problem)
        # NUL is refused at the request's edge by the kit, before the address rules.
        assert any(why in str(problem) for why in ("invisible", "scripts", "U+0000"))

    # Changing an address follows the same rules.
    other = await create(api, admin, "r2@example.com", "R2")
    assert other.status_code == 201, other.text
    path = f"/api/v1/users/{other.json()['id']}"
    for twin in (CYRILLIC_DOMAIN, ZERO_WIDTH):
        problem = assert_problem(
            await api.client.patch(path, json={"email": twin}, headers=admin), 422
        )
        assert problem["errors"][0]["loc"][-1] == "email"
    assert_problem(await api.client.patch(path, json={"email": FULL_WIDTH}, headers=admin), 409)
    kept = await api.client.patch(path, json={"email": "\uff32\uff12@example.com"}, headers=admin)
    assert kept.status_code == 200 and kept.json()["email"] == "R2@example.com"

    # Scripts that belong together are welcome.
    for email in ("\u5f20\u4e09@example.com", "\u0438\u0432@\u043f\u0440.\u0440\u0444"):
        assert (await create(api, admin, email, "Intl")).status_code == 201


async def test_sign_in_looks_up_the_normalised_address(api: Api) -> None:
    admin = await api.admin()
    assert (await create(api, admin, "r1@example.com")).status_code == 201
    # Typed full-width, it is the same account.
    assert (await api.login(FULL_WIDTH, PASSWORD)).status_code == 200
    # A twin is no account anyone can have: refused as input, before any password is checked.
    for twin in (ZERO_WIDTH, CYRILLIC_DOMAIN, NUL):
        problem = assert_problem(await api.login(twin, PASSWORD), 422)
        assert problem["errors"][0]["loc"][-1] == "username", problem
    assert (await api.login("r1@example.com", "wrong-password")).status_code == 401
