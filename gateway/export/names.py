"""File names inside a bundle: short, ASCII, unique, never a path. Pure.

Mastercom accepts only English letters and digits in document names and BagIt manifests
must escape line breaks, so every name an attachment brings is reduced to letters,
digits, dots, dashes and underscores; the name as sent is kept in case.json.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 80
ROLES = {"c": "customer", "m": "merchant", "s": "staff"}


def safe(name: str, *, default: str = "file") -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = ascii_name.replace("\\", "/").rsplit("/", 1)[-1]  # never a path
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-") or default
    stem, dot, extension = cleaned.rpartition(".")
    if not dot or not stem or len(extension) > 10:
        stem, extension = cleaned, ""
    stem = stem[: MAX_NAME - len(extension) - 1]
    return f"{stem}.{extension}" if extension else stem


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`... if a file of that name (any case) is taken."""
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    candidate, number = name, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{stem}-{number}.{extension}" if extension else f"{stem}-{number}"
    taken.add(candidate.lower())
    return candidate
