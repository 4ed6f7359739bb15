"""Hiding the parties' addresses in an export meant for outside the provider. Pure.

Known addresses (the customer's, the merchant's, staff's and the case's own signed
addresses) become their role; any other address left in a text becomes
"[address hidden]". Names, dates and amounts stay: a bank knows its cardholder.
"""

from __future__ import annotations

import re
from typing import Any

_ADDRESS_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
HIDDEN = "[address hidden]"


class Redactor:
    """Replaces addresses in every string of a value (dicts and lists walked)."""

    def __init__(self, known: dict[str, str]) -> None:
        """`known`: address -> what to show instead (e.g. "[customer's address]")."""
        self._known = {address.lower(): label for address, label in known.items() if address}

    def text(self, value: str) -> str:
        return _ADDRESS_RE.sub(lambda m: self._known.get(m.group(0).lower(), HIDDEN), value)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(item) for item in value]
        return value


def keep(value: Any) -> Any:
    """The no-op redactor of a full export."""
    return value
