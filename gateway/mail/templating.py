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


def _money(amount: Decimal | str, currency: str, locale: str = "en") -> str:
    text = f"{Decimal(amount):,.2f}"
    if locale == "fr":
        return text.replace(",", "\u202f").replace(".", ",") + f" {currency}"
    return f"{currency} {text}"


class Renderer:
    """Renders one notice in one locale, text and HTML."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["date"] = _date
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
