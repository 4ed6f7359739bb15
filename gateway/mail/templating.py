"""Jinja2 environment for notices: StrictUndefined, HTML autoescape, one folder per notice.

Templates live in templates/<notice>/<locale>/{subject.txt, body.txt, body.html} and
get a plain dict built by the caller; they never query anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from zoneinfo import ZoneInfo

from gateway.display import local

MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
             "octobre", "novembre", "décembre")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _date(value: datetime, locale: str = "en") -> str:
    if locale == "fr":
        return f"{value.day} {MONTHS_FR[value.month - 1]} {value.year}"
    return value.strftime("%-d %B %Y")


def _datetime(value: datetime, locale: str = "en") -> str:
    """`26 November 2026, 10:00 CET` (fr: `26 novembre 2026, 10:00 CET`), already in the zone."""
    return f"{_date(value, locale)}, {value.strftime('%H:%M %Z')}"


def _money(amount: Decimal | str, currency: str, locale: str = "en") -> str:
    text = f"{Decimal(amount):,.2f}"
    if locale == "fr":
        return text.replace(",", "\u202f").replace(".", ",") + f" {currency}"
    return f"{currency} {text}"


class Renderer:
    """Renders one notice in one locale, text and HTML."""

    def __init__(self, templates_dir: Path, timezone: str = "UTC") -> None:
        """`timezone`: the zone every date and time is shown in ([timers] timezone)."""
        self.templates_dir = templates_dir
        zone = ZoneInfo(timezone)
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["date"] = lambda value, locale="en": _date(local(value, zone), locale)
        self.env.filters["datetime"] = lambda value, locale="en": _datetime(local(value, zone), locale)
        self.env.filters["money"] = _money

    def render(self, folder: str, locale: str, context: dict) -> Rendered:
        context = {**context, "locale": locale}
        subject = " ".join(self.env.get_template(f"{folder}/{locale}/subject.txt").render(context).split())
        # Case mail keeps the case's thread subject, so the notice's own subject is shown
        # as the headline of its body.
        context["headline"] = subject
        text = self.env.get_template(f"{folder}/{locale}/body.txt").render(context)
        html = self.env.get_template(f"{folder}/{locale}/body.html").render(context)
        return Rendered(subject=subject, text=text.strip() + "\n", html=html)
