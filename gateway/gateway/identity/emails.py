"""Email addresses as identity keeps them: one spelling for one look.

An address is NFKC-normalised (its full-width spelling is `r1@example.com`, and so are its
ligatures and other compatibility forms) and compared without regard to case, as before. Two
kinds of address are refused, because they would let two accounts look the same in every list
and audit line:

- invisible characters: format and control characters (zero-width spaces and joiners, bidi
  overrides and isolates, soft hyphens, tags), unassigned and private-use code points, and the
  default-ignorable letters and marks that render as nothing (Hangul fillers, variation
  selectors, the combining grapheme joiner);
- mixed scripts: the letters of one address must come from one script, or from one of the
  combinations Unicode's UTS #39 allows at its "highly restrictive" level (Latin with Han and
  Japanese kana, with Han and Bopomofo, or with Han and Hangul). `r1@example.com` with a
  Cyrillic `e` (U+0435) in its domain, or a Cyrillic local part at a Latin domain, is
  refused. Digits and punctuation (Unicode's Common script) and combining marks (Inherited)
  go with any script.

The scripts come from `confusable_homoglyphs` (its table of Unicode's Scripts.txt), the
categories from the standard library.
"""

from __future__ import annotations

import unicodedata

from confusable_homoglyphs import categories

# Letters and marks that are default-ignorable (they render as nothing) but whose category
# does not say so: Hangul fillers, the combining grapheme joiner, Khmer inherent vowels,
# Mongolian and other variation selectors; and the blank Braille pattern.
_IGNORABLE = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0}
    | set(range(0x180B, 0x1810))
    | set(range(0xFE00, 0xFE10))
    | set(range(0xE0100, 0xE01F0))
)
# Control, format (zero-width, bidi, soft hyphen, tags), surrogate, private use, unassigned;
# separators other than the plain space (which the address pattern refuses anyway).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ANY_SCRIPT = frozenset({"COMMON", "INHERITED"})
# UTS #39 "highly restrictive": one script, or Latin with one of these East Asian sets.
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def normalize_email(value: str) -> str:
    """The address NFKC-normalised and stripped (its case kept: comparisons ignore case).
    ValueError, saying why, for invisible characters or mixed scripts."""
    text = unicodedata.normalize("NFKC", value).strip()
    scripts: dict[str, str] = {}
    for char in text:
        if char.isascii():
            # No table needed: control characters are the only invisible ones in ASCII.
            if not char.isprintable():
                raise ValueError(f"contains an invisible character ({_describe(char)})")
            script = "LATIN" if char.isalpha() else "COMMON"
        else:
            category = unicodedata.category(char)
            if (
                ord(char) in _IGNORABLE
                or category in _INVISIBLE_CATEGORIES
                or (category == "Zs" and char != " ")
            ):
                raise ValueError(f"contains an invisible character ({_describe(char)})")
            script = categories.alias(char)
        if script == "Unknown":
            raise ValueError(f"contains a character Unicode does not assign ({_describe(char)})")
        if script not in _ANY_SCRIPT:
            scripts.setdefault(script, char)
    if len(scripts) > 1 and not any(scripts.keys() <= mix for mix in _ALLOWED_MIXES):
        found = ", ".join(f"{s.title()} ({_describe(c)})" for s, c in sorted(scripts.items()))
        raise ValueError(
            f"mixes the letters of several scripts, so it can pass for another: {found}"
        )
    return text


def email_key(value: str) -> str:
    """What two spellings of one address share: normalised, in lower case."""
    return normalize_email(value).lower()
