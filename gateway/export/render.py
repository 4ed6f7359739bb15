"""The summary (text, per locale) and the transcript (HTML) of a bundle, from the view
the service builds. The templates are part of the bundle's format, so they ship with this
package (gateway/export/templates/), not with the site's notice templates."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gateway.export.document import local

TEMPLATES = Path(__file__).resolve().parent / "templates"
SUMMARY_LOCALES = ("en", "fr")


def _local(value: str | None, timezone: str) -> str:
    return local(datetime.fromisoformat(value), timezone) if value else "-"


def _day(value: str | None) -> str:
    return value[:10] if value else "-"


_ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                   autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_ENV.filters["local"] = _local
_ENV.filters["day"] = _day


def summary_text(view: dict, locale: str) -> str:
    text = _ENV.get_template(f"summary.{locale}.txt").render(view)
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"


def transcript_html(view: dict) -> str:
    return _ENV.get_template("transcript.html").render(view)
