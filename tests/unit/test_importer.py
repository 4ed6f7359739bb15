"""CSV import of merchants and transactions against a real SQLite database (file in tmp_path)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from gateway import importer
from gateway.db import Database, upgrade
from gateway.models import Merchant, Transaction

NOW = datetime(2024, 9, 1, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=1)
MERCHANT_HEADER = "merchant_id,name,support_email,locale\n"
TX_HEADER = "reference,merchant_id,customer_email,customer_name,amount,currency,transaction_date\n"
MERCHANTS = MERCHANT_HEADER + "M1,Shop One,Support@Shop.test,en\nM2,Boutique Deux,aide@boutique.test,fr\n"
GOOD_TX = "TX-1001,M1,carol@customer.test,Carol,12.50,EUR,2024-08-01\n"


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """One migrated database file per module; each test gets a copy (migrations are the slow part)."""
    path = tmp_path_factory.mktemp("importer") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def db(template_db, tmp_path):
    path = tmp_path / "t.db"
    path.write_bytes(template_db.read_bytes())
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _import_merchants(db, path, now=NOW):
    with db.unit_of_work() as session:
        return importer.import_merchants(session, path, now=now)


def _import_transactions(db, path, now=NOW):
    with db.unit_of_work() as session:
        return importer.import_transactions(session, path, now=now)


def _merchants(db) -> dict[str, Merchant]:
    with db.unit_of_work() as session:
        return {m.merchant_id: m for m in session.scalars(select(Merchant))}


def _transactions(db) -> dict[str, Transaction]:
    with db.unit_of_work() as session:
        return {t.reference: t for t in session.scalars(select(Transaction))}


@pytest.fixture
def merchants(db, tmp_path):
    _import_merchants(db, _write(tmp_path, "merchants.csv", MERCHANTS))
    return db


# ---------------------------------------------------------------- merchants


def test_merchants_are_created(db, tmp_path):
    report = _import_merchants(db, _write(tmp_path, "m.csv", MERCHANTS))
    assert report == importer.ImportReport(created=2, updated=0)
    rows = _merchants(db)
    assert rows["M1"].name == "Shop One"
    assert rows["M1"].support_email == "support@shop.test"
    assert rows["M2"].locale == "fr"
    assert rows["M1"].address_invalid is False
    assert rows["M1"].updated_at == NOW


def test_merchant_upsert_updates_rows(merchants, tmp_path):
    changed = MERCHANT_HEADER + "M1,Shop One Renamed,support@shop.test,fr\nM3,New Shop,new@shop3.test,en\n"
    report = _import_merchants(merchants, _write(tmp_path, "m2.csv", changed), now=LATER)
    assert report == importer.ImportReport(created=1, updated=1)
    rows = _merchants(merchants)
    assert (rows["M1"].name, rows["M1"].locale, rows["M1"].updated_at) == ("Shop One Renamed", "fr", LATER)
    assert rows["M2"].updated_at == NOW  # not in the file: untouched
    assert set(rows) == {"M1", "M2", "M3"}


def _mark_invalid(db, merchant_id: str) -> None:
    with db.unit_of_work() as session:
        merchant = session.get(Merchant, merchant_id)
        merchant.address_invalid = True
        merchant.address_invalid_reason = "550 5.1.1 user unknown"
        merchant.address_invalid_at = NOW


@pytest.mark.parametrize("new_email, cleared", [
    ("claims@shop.test", True),
    ("SUPPORT@shop.test", False),  # the same address, written differently
    ("support@shop.test", False),
])
def test_changed_support_email_clears_address_invalid(merchants, tmp_path, new_email, cleared):
    _mark_invalid(merchants, "M1")
    _import_merchants(merchants, _write(tmp_path, "m2.csv", MERCHANT_HEADER + f"M1,Shop One,{new_email},en\n"),
                      now=LATER)
    merchant = _merchants(merchants)["M1"]
    assert merchant.support_email == new_email.lower()
    assert merchant.address_invalid is (not cleared)
    assert (merchant.address_invalid_reason is None) is cleared
    assert (merchant.address_invalid_at is None) is cleared


# (rows after a good update of M1 on line 2, line of the bad row, column named)
@pytest.mark.parametrize("body, line, column", [
    ("M3,Shop,not-an-email,en\n", 3, "support_email"),
    ("M3,Shop,a@b.test,en\nM4,Shop,two@@shop.test,en\n", 4, "support_email"),
    ("M3,Shop,a@b.test,en\nM4,Shop,b@b.test,en\nM5,Shop,c@b.test,de\n", 5, "locale"),
    ("M3,,a@b.test,en\n", 3, "name"),
    (",Shop,a@b.test,en\n", 3, "merchant_id"),
    ("M3,Shop,a@b.test,en\nM3,Shop again,a@b.test,en\n", 4, "merchant_id"),
    ("M3,Shop,a@b.test,en\n\n\nM4,Shop,bad,en\n", 6, "support_email"),
])
def test_bad_merchant_row_names_its_line_and_imports_nothing(merchants, tmp_path, body, line, column):
    before = {k: (m.name, m.support_email) for k, m in _merchants(merchants).items()}
    path = _write(tmp_path, "bad.csv", MERCHANT_HEADER + "M1,Changed Name,changed@shop.test,en\n" + body)
    with pytest.raises(importer.ImportError_) as error:
        _import_merchants(merchants, path)
    message = str(error.value)
    assert f"line {line}:" in message and column in message and str(path) in message
    assert {k: (m.name, m.support_email) for k, m in _merchants(merchants).items()} == before


@pytest.mark.parametrize("text, fragment", [
    ("merchant_id,name,locale\nM3,Shop,en\n", "line 1: missing column(s) support_email"),
    ("", "line 1: missing column(s) merchant_id, name, support_email, locale"),
    (MERCHANT_HEADER + "M3,Shop,a@b.test,en,extra\n", "line 2: more fields than columns"),
])
def test_merchant_file_structure_errors(db, tmp_path, text, fragment):
    with pytest.raises(importer.ImportError_, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        _import_merchants(db, _write(tmp_path, "m.csv", text))
    assert _merchants(db) == {}


def test_missing_file(db, tmp_path):
    with pytest.raises(importer.ImportError_, match="file not found"):
        _import_merchants(db, tmp_path / "nope.csv")


def test_not_utf8(db, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((MERCHANT_HEADER + "M1,Caf\u00e9,a@b.test,en\n").encode("latin-1"))
    with pytest.raises(importer.ImportError_, match="not UTF-8"):
        _import_merchants(db, path)


def test_bom_and_padded_header_are_accepted(db, tmp_path):
    text = "\ufeff merchant_id , name , support_email , locale \r\n M1 , Shop , a@b.test , en \r\n"
    assert _import_merchants(db, _write(tmp_path, "m.csv", text)).created == 1
    assert _merchants(db)["M1"].name == "Shop"


# ---------------------------------------------------------------- transactions


def test_transactions_are_created(merchants, tmp_path):
    text = TX_HEADER + GOOD_TX + "TX-1002,M2,Dan@Customer.TEST,Dan,3,usd,2024-08-02T10:00:00+02:00\n"
    assert _import_transactions(merchants, _write(tmp_path, "t.csv", text)) == importer.ImportReport(2, 0)
    rows = _transactions(merchants)
    assert rows["TX-1001"].amount == Decimal("12.50")
    assert rows["TX-1001"].currency == "EUR"
    assert rows["TX-1001"].merchant_id == "M1"
    assert rows["TX-1002"].customer_email == "dan@customer.test"
    assert rows["TX-1002"].currency == "USD"
    assert rows["TX-1002"].amount == Decimal("3.00")
    assert rows["TX-1002"].reference_key == "tx-1002"


def test_transaction_upsert_updates_rows(merchants, tmp_path):
    _import_transactions(merchants, _write(tmp_path, "t1.csv", TX_HEADER + GOOD_TX))
    changed = TX_HEADER + "tx-1001,M2,carol@customer.test,Carol C.,13,EUR,2024-08-03\n" \
                          "TX-1003,M1,erin@customer.test,Erin,1,EUR,2024-08-04\n"
    report = _import_transactions(merchants, _write(tmp_path, "t2.csv", changed), now=LATER)
    assert report == importer.ImportReport(created=1, updated=1)
    rows = _transactions(merchants)
    assert set(rows) == {"TX-1001", "TX-1003"}  # same reference, whatever its case
    tx = rows["TX-1001"]
    assert (tx.merchant_id, tx.customer_name, tx.amount, tx.updated_at) == ("M2", "Carol C.", Decimal("13.00"), LATER)
    assert tx.transaction_date == datetime(2024, 8, 3, tzinfo=timezone.utc)


@pytest.mark.parametrize("value, expected", [
    ("2024-08-01", datetime(2024, 8, 1, 0, 0, tzinfo=timezone.utc)),
    ("2024-08-01T10:30:00", datetime(2024, 8, 1, 10, 30, tzinfo=timezone.utc)),
    ("2024-08-01T10:30:00Z", datetime(2024, 8, 1, 10, 30, tzinfo=timezone.utc)),
    ("2024-08-01T10:30:00+02:00", datetime(2024, 8, 1, 8, 30, tzinfo=timezone.utc)),
    ("2024-08-01 23:30:00-05:00", datetime(2024, 8, 2, 4, 30, tzinfo=timezone.utc)),
    ("2024-08-01T00:30:00+01:00", datetime(2024, 7, 31, 23, 30, tzinfo=timezone.utc)),
])
def test_iso_dates_parse_to_utc(merchants, tmp_path, value, expected):
    assert importer.parse_date(value) == expected
    assert importer.parse_date(value).utcoffset() == timedelta(0)
    row = f"TX-2001,M1,carol@customer.test,Carol,1,EUR,{value}\n"
    _import_transactions(merchants, _write(tmp_path, "t.csv", TX_HEADER + row))
    stored = _transactions(merchants)["TX-2001"].transaction_date
    assert stored == expected and stored.utcoffset() == timedelta(0)


# (bad row, column named in the error). Each is put after a good row, on line 3.
BAD_TRANSACTIONS = [
    ("TX-2001,M1,carol,Carol,1,EUR,2024-08-01", "customer_email"),
    ("TX-2001,M1,carol@customer,Carol,1,EUR,2024-08-01", "customer_email"),
    ("TX-2001,M1,,Carol,1,EUR,2024-08-01", "customer_email"),
    ("TX-2001,M9,carol@customer.test,Carol,1,EUR,2024-08-01", "merchant_id"),
    ("TX-2001,M1,carol@customer.test,Carol,1,EUR,2024-13-01", "transaction_date"),
    ("TX-2001,M1,carol@customer.test,Carol,1,EUR,01/08/2024", "transaction_date"),
    ("TX-2001,M1,carol@customer.test,Carol,1,EUR,", "transaction_date"),
    ("TX-2001,M1,carol@customer.test,Carol,-1,EUR,2024-08-01", "amount"),
    ("TX-2001,M1,carol@customer.test,Carol,abc,EUR,2024-08-01", "amount"),
    ("TX-2001,M1,carol@customer.test,Carol,NaN,EUR,2024-08-01", "amount"),
    ("TX-2001,M1,carol@customer.test,Carol,Infinity,EUR,2024-08-01", "amount"),
    ("TX-2001,M1,carol@customer.test,Carol,,EUR,2024-08-01", "amount"),
    ("TX-2001,M1,carol@customer.test,Carol,\"1,50\",EUR,2024-08-01", "amount"),
    ("TX-2001,M1,carol@customer.test,Carol,1,EURO,2024-08-01", "currency"),
    ("TX-2001,M1,carol@customer.test,Carol,1,€,2024-08-01", "currency"),
    ("TX-1001,M1,carol@customer.test,Carol,1,EUR,2024-08-01", "reference"),  # duplicate of line 2
    ("tx-1001,M1,carol@customer.test,Carol,1,EUR,2024-08-01", "reference"),  # duplicate, other case
    ("T1,M1,carol@customer.test,Carol,1,EUR,2024-08-01", "reference"),
    ("TX 2001,M1,carol@customer.test,Carol,1,EUR,2024-08-01", "reference"),
]


@pytest.mark.parametrize("row, column", BAD_TRANSACTIONS)
def test_bad_transaction_row_names_its_line_and_imports_nothing(merchants, tmp_path, row, column):
    path = _write(tmp_path, "t.csv", TX_HEADER + GOOD_TX + row + "\nTX-3001,M1,z@customer.test,Z,1,EUR,2024-08-01\n")
    with pytest.raises(importer.ImportError_) as error:
        _import_transactions(merchants, path)
    message = str(error.value)
    assert "line 3:" in message and f"{column}:" in message and str(path) in message
    assert "\n" not in message
    assert _transactions(merchants) == {}


@pytest.mark.parametrize("lines_before, line", [
    ("", 2),
    (GOOD_TX, 3),
    (GOOD_TX + "TX-1002,M1,b@customer.test,B,1,EUR,2024-08-01\n", 4),
    (GOOD_TX + "\n\n", 5),  # blank lines still count
    ("TX-1005,M1,b@customer.test,\"Name on\ntwo lines\",1,EUR,2024-08-01\n", 4),  # a quoted newline too
])
def test_error_line_number_is_the_physical_line(merchants, tmp_path, lines_before, line):
    bad = "TX-2001,M1,bad-email,Carol,1,EUR,2024-08-01\n"
    path = _write(tmp_path, "t.csv", TX_HEADER + lines_before + bad)
    with pytest.raises(importer.ImportError_, match=f"line {line}: customer_email"):
        _import_transactions(merchants, path)


def test_bad_row_leaves_existing_rows_unchanged(merchants, tmp_path):
    _import_transactions(merchants, _write(tmp_path, "t1.csv", TX_HEADER + GOOD_TX))
    update_then_bad = TX_HEADER + "TX-1001,M1,carol@customer.test,Carol,99,EUR,2024-08-01\n" \
                                  "TX-2001,M9,carol@customer.test,Carol,1,EUR,2024-08-01\n"
    with pytest.raises(importer.ImportError_, match="line 3: merchant_id"):
        _import_transactions(merchants, _write(tmp_path, "t2.csv", update_then_bad), now=LATER)
    tx = _transactions(merchants)["TX-1001"]
    assert (tx.amount, tx.updated_at) == (Decimal("12.50"), NOW)


@pytest.mark.parametrize("header", [
    TX_HEADER.replace("amount,", ""),
    TX_HEADER.replace(",transaction_date", ""),
    TX_HEADER.replace("customer_email", "email"),
])
def test_missing_transaction_column(merchants, tmp_path, header):
    with pytest.raises(importer.ImportError_, match="line 1: missing column"):
        _import_transactions(merchants, _write(tmp_path, "t.csv", header + GOOD_TX))
    assert _transactions(merchants) == {}


def test_merchant_must_be_in_the_database_not_just_in_the_file(db, tmp_path):
    with pytest.raises(importer.ImportError_, match="line 2: merchant_id: unknown merchant 'M1'"):
        _import_transactions(db, _write(tmp_path, "t.csv", TX_HEADER + GOOD_TX))


@pytest.mark.parametrize("amount, stored", [("0", Decimal("0.00")), ("1e3", Decimal("1000.00")),
                                            ("12.5", Decimal("12.50")), (" 7 ", Decimal("7.00"))])
def test_amounts(merchants, tmp_path, amount, stored):
    _import_transactions(merchants, _write(tmp_path, "t.csv",
                                           TX_HEADER + f"TX-2001,M1,c@customer.test,C,{amount},EUR,2024-08-01\n"))
    assert _transactions(merchants)["TX-2001"].amount == stored


@pytest.mark.parametrize("amount", ["1e30", "123456789012345678901234567890"])
def test_huge_amount_is_a_line_error(merchants, tmp_path, amount):
    path = _write(tmp_path, "t.csv", TX_HEADER + GOOD_TX + f"TX-2001,M1,c@customer.test,C,{amount},EUR,2024-08-01\n")
    with pytest.raises(importer.ImportError_, match="line 3: amount"):
        _import_transactions(merchants, path)


def test_every_bad_row_is_reported_not_only_the_first(merchants, tmp_path):
    path = _write(tmp_path, "t.csv", TX_HEADER + "TX-4001,M1,bad,A,1,EUR,2024-08-01\n"
                  + "TX-4002,M1,b@customer.test,B,-5,EUR,2024-08-01\n" + "TX-4003,M1,c@customer.test,C,1,EUR,2024-08-01\n"
                  + "TX-4004,M9,d@customer.test,D,1,EUR,2024-08-01\n")
    with pytest.raises(importer.ImportError_) as error:
        _import_transactions(merchants, path)
    assert [p.split(": ", 1)[1] for p in error.value.problems] == [
        "line 2: customer_email: not an email address: 'bad'",
        f"line 3: amount: not a number from 0 to {importer.MAX_AMOUNT - 1}: '-5'",
        "line 5: merchant_id: unknown merchant 'M9' (import merchants first)"]
    assert str(error.value).endswith("(and 2 more bad row(s))") and "\n" not in str(error.value)
    assert _transactions(merchants) == {}


def test_a_row_with_too_many_fields_is_reported_in_line_order_with_the_others(db, tmp_path):
    path = _write(tmp_path, "m.csv", MERCHANT_HEADER + "M1,Shop,bad,en\nM2,Shop,a@b.test,en,extra\nM3,Shop,c@d.test,de\n")
    with pytest.raises(importer.ImportError_) as error:
        _import_merchants(db, path)
    assert [p.split(": ")[1] for p in error.value.problems] == ["line 2", "line 3", "line 4"]
    assert "more fields than columns" in error.value.problems[1]


def test_the_first_fifty_bad_rows_are_listed_and_the_rest_counted(db, tmp_path):
    path = _write(tmp_path, "m.csv", MERCHANT_HEADER + "".join(f"M{i},Shop,bad,en\n" for i in range(60)))
    with pytest.raises(importer.ImportError_) as error:
        _import_merchants(db, path)
    assert (len(error.value.problems), error.value.total) == (importer.MAX_PROBLEMS, 60)
