"""Clocks: the one way code learns the time. Pure code takes `now` as a parameter;
only actors, the scheduler and ingress ask a Clock, once, at the top."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that says what it is told; `advance` moves it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at


class BusinessCalendar:
    """Business days (Monday to Friday, minus the country's public holidays) in a timezone.

    Adding business days keeps the local time of day, so a deadline set at 10:00 Paris
    time stays at 10:00 across a DST change.
    """

    def __init__(self, timezone_name: str = "Europe/Paris", country: str = "FR") -> None:
        self.tz = ZoneInfo(timezone_name)
        self.country = country
        self._holidays = holidays.country_holidays(country)

    def is_business_day(self, day) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def add_business_days(self, at: datetime, days: int) -> datetime:
        """`at` moved forward by `days` business days (a start on a non-business day counts from the next one)."""
        local = self.local(at)
        day = local.date()
        added = 0
        while added < days:
            day += timedelta(days=1)
            if self.is_business_day(day):
                added += 1
        moved = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=self.tz)
        return moved.astimezone(timezone.utc)

    def at_local_time(self, day, hour: int, minute: int) -> datetime:
        """The UTC instant of `hour:minute` local time on `day`."""
        return datetime.combine(day, time(hour, minute), tzinfo=self.tz).astimezone(timezone.utc)

    def business_day_on_or_after(self, day):
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def next_business_day(self, day):
        return self.business_day_on_or_after(day + timedelta(days=1))
