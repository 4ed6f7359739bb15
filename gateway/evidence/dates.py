"""Dates as people write them in English and French mail: "2026-12-03", "03/12/2026",
"3 December 2026", "December 3rd", "le 3 déc.", "1er décembre", "tomorrow", "demain".
Pure: relative words and dates without a year are read against `today`, the day the
message was received.

Numeric dates are read day first (03/12 is 3 December), as in France and most of
Europe, unless only the other order makes a date (12/31 is 31 December).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

MONTHS: dict[str, int] = {}
for number, names in enumerate((
    ("january", "jan", "janvier", "janv"), ("february", "feb", "fevrier", "fev", "fevr"),
    ("march", "mar", "mars"), ("april", "apr", "avril", "avr"), ("may", "mai"),
    ("june", "jun", "juin"), ("july", "jul", "juillet", "juil"), ("august", "aug", "aout"),
    ("september", "sep", "sept", "septembre"), ("october", "oct", "octobre"),
    ("november", "nov", "novembre"), ("december", "dec", "decembre"),
), start=1):
    for name in names:
        MONTHS[name] = number

_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th|er|e)?"
_YEAR = r"(?P<year>20\d{2})"
_WEEKDAY = (r"(?:(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|lundi|mardi|mercredi|jeudi|"
            r"vendredi|samedi|dimanche),? )?")
PATTERNS: tuple[re.Pattern, ...] = (
    re.compile(rf"\b{_YEAR}-(?P<month>[01]?\d)-(?P<day>[0-3]?\d)\b"),
    re.compile(r"\b(?P<a>[0-3]?\d)[/.](?P<b>[0-3]?\d)[/.](?P<year>20\d{2}|\d{2})\b"),
    re.compile(rf"\b{_WEEKDAY}{_DAY} {_MONTH}(?:,? {_YEAR})?\b"),
    re.compile(rf"\b{_WEEKDAY}{_MONTH} {_DAY}(?:,? {_YEAR})?\b"),
    re.compile(r"\b(?P<a>[0-3]?\d)/(?P<b>[0-3]?\d)\b(?![/.]\d)"),
)
RELATIVE: dict[str, int] = {"today": 0, "aujourd'hui": 0, "aujourd hui": 0, "tomorrow": 1, "demain": 1,
                            "yesterday": -1, "hier": -1, "apres-demain": 2, "apres demain": 2,
                            "day after tomorrow": 2, "avant-hier": -2, "avant hier": -2}
_RELATIVE_RE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(RELATIVE, key=len, reverse=True)) + r")\b")


@dataclass(frozen=True)
class FoundDate:
    start: int
    end: int
    value: date


def _build(year: int | None, month: int, day: int, today: date) -> date | None:
    """The date, its year (when missing) the one that puts it nearest to `today`."""
    if year is not None and year < 100:
        year += 2000
    candidates = [year] if year is not None else [today.year - 1, today.year, today.year + 1]
    found = []
    for y in candidates:
        try:
            found.append(date(y, month, day))
        except ValueError:
            continue
    return min(found, key=lambda d: abs((d - today).days)) if found else None


def _numeric(a: int, b: int) -> tuple[int, int] | None:
    """(month, day) of a numeric date written a/b: day first unless only b/a is a date."""
    if 1 <= b <= 12 and 1 <= a <= 31:
        return b, a
    if 1 <= a <= 12 and 1 <= b <= 31:
        return a, b
    return None


def find_dates(folded: str, today: date) -> list[FoundDate]:
    """Every date in `folded` (lower case, accents removed: see recognise.fold), in order."""
    found: list[FoundDate] = []
    taken: list[tuple[int, int]] = []
    for pattern in PATTERNS:
        for match in pattern.finditer(folded):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            groups = match.groupdict()
            year = int(groups["year"]) if groups.get("year") else None
            if groups.get("a") is not None:
                order = _numeric(int(groups["a"]), int(groups["b"]))
                if order is None:
                    continue
                month, day = order
            else:
                month = int(groups["month"]) if groups["month"].isdigit() else MONTHS[groups["month"]]
                day = int(groups["day"])
            value = _build(year, month, day, today)
            if value is not None:
                found.append(FoundDate(match.start(), match.end(), value))
                taken.append((match.start(), match.end()))
    for match in _RELATIVE_RE.finditer(folded):
        if not any(match.start() < end and start < match.end() for start, end in taken):
            found.append(FoundDate(match.start(), match.end(), today + timedelta(days=RELATIVE[match.group(0)])))
    return sorted(found, key=lambda d: d.start)
