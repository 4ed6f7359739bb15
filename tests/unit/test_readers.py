"""casework/readers.py: who reads a party's message, one rule for live and released mail
(in-memory database, fixed clock)."""

from __future__ import annotations

import pytest

from gateway.casework import readers
from gateway.models import Merchant
from tests.unit.casework_db import add_case, db, settings, work  # db: the fixture


@pytest.mark.parametrize("category, escalated, escalating, unreachable, expected", [
    ("delivery", False, False, False, ["m"]),  # the merchant answers a delivery complaint
    ("delivery", True, False, False, ["m", "s"]),  # staff read along once they own the case
    ("delivery", False, True, False, ["m", "s"]),  # the customer's #escalate reaches staff with her words
    ("delivery", False, False, True, ["s"]),  # a dead merchant address: staff, never nobody
    ("payment", False, False, False, ["s"]),  # payment cases are staff's
    (None, False, False, False, ["s"]),  # category not known yet: staff
])
def test_the_customers_message(db, tmp_path, category, escalated, escalating, unreachable, expected):
    case = add_case(db, category=category, escalated=escalated)
    db.get(Merchant, "shop").address_invalid = unreachable
    assert readers.readers_of(work(db, settings(tmp_path)), case, "c", escalating=escalating) == expected


@pytest.mark.parametrize("category, escalated, expected", [
    ("delivery", False, ["c"]), ("delivery", True, ["c", "s"]), ("payment", False, ["c", "s"]),
])
def test_the_merchants_message(db, tmp_path, category, escalated, expected):
    case = add_case(db, category=category, escalated=escalated)
    assert readers.readers_of(work(db, settings(tmp_path)), case, "m") == expected


@pytest.mark.parametrize("unreachable, expected", [(False, ["c", "m"]), (True, ["c"])])
def test_a_released_staff_message(db, tmp_path, unreachable, expected):
    case = add_case(db)
    db.get(Merchant, "shop").address_invalid = unreachable
    assert readers.readers_of(work(db, settings(tmp_path)), case, "s") == expected
