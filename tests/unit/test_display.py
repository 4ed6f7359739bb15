"""Times in staff notices are in [timers] timezone, with the zone (gateway/display.py and
the Renderer's date and datetime filters)."""

from __future__ import annotations

from datetime import datetime, timezone

from gateway.mail.templating import Renderer
from gateway.notices import Notice
from gateway.settings import DEFAULT_TEMPLATES_DIR
from tests.unit.test_templates import _context


def test_staff_notices_show_times_in_the_configured_zone_with_it():
    context = {**_context(Notice.STAFF_QUARANTINE), "received_at": datetime(2026, 11, 26, 23, 30, tzinfo=timezone.utc)}
    paris = Renderer(DEFAULT_TEMPLATES_DIR, "Europe/Paris").render("staff_quarantine", "en", context)
    assert "27 November 2026, 00:30 CET" in paris.text and "27 November 2026, 00:30 CET" in paris.html
    french = Renderer(DEFAULT_TEMPLATES_DIR, "Europe/Paris").render("staff_quarantine", "fr", context)
    assert "27 novembre 2026, 00:30 CET" in french.text
    assert "26 November 2026, 23:30 UTC" in Renderer(DEFAULT_TEMPLATES_DIR).render("staff_quarantine", "en", context).text
