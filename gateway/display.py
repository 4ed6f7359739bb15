"""What people read (terminal output, staff notices): values without Python reprs, times
with their zone, aligned tables. One zone throughout: [timers] timezone (JSON stays in UTC)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

CELL_MAX = 60  # a longer cell (an error text) is cut, with an ellipsis
TIME_FORMAT = "%Y-%m-%d %H:%M %Z"


def is_calendar_date(at: datetime) -> bool:
    """A date imported without a time (a CSV transaction_date) is stored as 00:00 UTC, and
    so are the day-based timers counted from it: such a value names a day, not a moment,
    and is shown as that day (never as 01:00 in Paris or 19:00 the day before in New York)."""
    return at.tzinfo is not None and at.utcoffset() == timedelta(0) and at.time() == time(0)


def local(at: datetime | date, zone: ZoneInfo) -> datetime | date:
    """`at` in `zone` (a naive stored value is UTC); a calendar date stays on its day, and a
    `date` is returned as it is."""
    if not isinstance(at, datetime):
        return at
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at if is_calendar_date(at) else at.astimezone(zone)


class Display:
    """Formats values for people, times in one zone."""

    def __init__(self, timezone_name: str = "UTC") -> None:
        self.zone = ZoneInfo(timezone_name)

    def time(self, value: datetime | str | None) -> str:
        """`2026-11-26 10:00 CET`; a calendar date as `2026-11-26`; '-' when there is none."""
        if value in (None, ""):
            return "-"
        at = local(datetime.fromisoformat(value) if isinstance(value, str) else value, self.zone)
        return at.date().isoformat() if is_calendar_date(at) else at.strftime(TIME_FORMAT)

    def date(self, value: datetime | str | None) -> str:
        """The day of `value` in the display zone (a calendar date is its own day)."""
        if value in (None, ""):
            return "-"
        return local(datetime.fromisoformat(value) if isinstance(value, str) else value, self.zone).date().isoformat()

    def value(self, value, key: str = "") -> str:
        """None and empty as '-', booleans as yes/no, lists joined, times (keys ending in
        _at) in the display zone, a date as YYYY-MM-DD."""
        if key.endswith("_at") and value:
            return self.time(value)
        if value is None or value == "" or value == [] or value == ():
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (list, tuple)):
            return ", ".join(self.value(item) for item in value)
        if isinstance(value, datetime):
            return self.time(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, dict):
            return ", ".join(f"{k}={self.value(v, k)}" for k, v in value.items()) or "-"
        return str(value)


UTC_DISPLAY = Display("UTC")


def table(rows: list[dict], columns: tuple[str, ...], *, display: Display = UTC_DISPLAY,
          empty: str = "nothing") -> str:
    """Rows as an aligned table under upper-case column names; the last column is not padded."""
    if not rows:
        return empty
    cells = [[_cut(display.value(row.get(column), column)) for column in columns] for row in rows]
    header = [column.upper().replace("_", " ") for column in columns]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *cells])


def _cut(text: str) -> str:
    text = " ".join(text.split())  # one line per row
    return text if len(text) <= CELL_MAX else text[:CELL_MAX - 1] + "…"
