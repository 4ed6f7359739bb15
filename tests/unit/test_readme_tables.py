"""The README's attack -> answer tables name tests that exist: the table and the tests move
together."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_every_test_the_sender_trust_table_names_exists():
    section = _section("Sender trust")
    named = re.findall(r"`((?:tests/[\w/]+\.py::)?test_\w+)`", section)
    assert len(named) >= 10
    for name in named:
        path, _, function = name.rpartition("::")
        source = (ROOT / (path or "tests/integration/test_sender_trust.py")).read_text()
        assert f"def {function}(" in source, name
