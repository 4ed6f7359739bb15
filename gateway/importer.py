"""CSV import of merchants and transactions: validate every row first, then upsert all of
them in one transaction, so a bad row leaves nothing of its file half-imported."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import LOCALES
from gateway.casework import delivery_trouble
from gateway.models import Merchant, Transaction

MERCHANT_COLUMNS = ("merchant_id", "name", "support_email", "locale")
TRANSACTION_COLUMNS = ("reference", "merchant_id", "customer_email", "customer_name", "amount", "currency", "transaction_date")
OPTIONAL_TRANSACTION_COLUMNS = ("customer_locale",)  # the customer's notice language (default: the gateway's)
_EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_REFERENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{2,62}[A-Za-z0-9]$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = Decimal(10) ** 12  # the column holds 12 digits before the decimal point


MAX_PROBLEMS = 50  # bad rows listed at most, per file


class ImportError_(Exception):
    """A file that cannot be imported. The message names the first bad line (and how many
    more there are); `problems` lists every bad row found, one line each."""

    def __init__(self, message: str, problems: tuple[str, ...] = (), total: int = 0,
                 rows: tuple["RowProblem", ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)
        self.total = max(total, len(self.problems))  # bad rows found; `problems` lists the first MAX_PROBLEMS
        self.rows = rows  # the same, as values (the HTTP API answers them as JSON)


@dataclass(frozen=True)
class RowProblem:
    """One bad row: where it is (a CSV line number, or an index in a JSON list), the column
    or field, and what is wrong."""

    row: int
    column: str | None
    problem: str


def _raise_if_any(problems: list[str], rows: list[RowProblem] | None = None) -> None:
    if not problems:
        return
    more = len(problems) - 1
    extra = f" (and {more} more bad row(s))" if more else ""
    raise ImportError_(problems[0] + extra, tuple(problems[:MAX_PROBLEMS]), total=len(problems),
                       rows=tuple((rows or [])[:MAX_PROBLEMS]))


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int


def _rows(path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[tuple[int, dict[str, str] | None]]:
    """The non-empty rows with their line numbers; None for a row with more fields than
    columns (reported in line order with the other bad rows)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportError_(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        raise ImportError_(f"{path}: not UTF-8 ({error})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ImportError_(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    reader.fieldnames = header
    rows = []
    for record in reader:
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue
        if None in record:
            rows.append((reader.line_num, None))
            continue
        rows.append((reader.line_num, {k: (record.get(k) or "").strip() for k in columns + optional}))
    return rows


def parse_date(value: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime (dates are taken at 00:00 UTC)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = datetime.combine(date.fromisoformat(value), time())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def import_merchants(db: Session, path: Path, *, now: datetime) -> ImportReport:
    """Upsert merchants; a changed support address clears an 'address invalid' flag."""
    return upsert_merchants(db, _rows(path, MERCHANT_COLUMNS), now=now, where=_Where(str(path), "line"))


@dataclass(frozen=True)
class _Where:
    """How a bad row is named: '<file>: line 3: ...' for a CSV file, 'merchants[2]: ...' for JSON."""

    source: str
    unit: str  # "line" or "index"

    def problem(self, row: int, column: str, problem: str) -> str:
        if self.unit == "line":
            return f"{self.source}: line {row}: {column}: {problem}"
        return f"{self.source}[{row}].{column}: {problem}"

    def too_many_fields(self, row: int) -> str:
        return f"{self.source}: line {row}: more fields than columns"


def records(items: list, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[tuple[int, dict[str, str]]]:
    """JSON objects as importer rows (index, {column: text}): the same shape as a CSV row,
    so they get exactly the CSV import's checks. Numbers become their text."""
    rows = []
    for index, item in enumerate(items):
        rows.append((index, {k: ("" if item.get(k) is None else str(item.get(k))).strip() for k in columns + optional}))
    return rows


def upsert_merchant_records(db: Session, items: list[dict], *, now: datetime, source: str = "merchants") -> ImportReport:
    """Upsert merchants given as JSON objects, all or nothing (the HTTP API)."""
    return upsert_merchants(db, records(items, MERCHANT_COLUMNS), now=now, where=_Where(source, "index"))


def upsert_transaction_records(db: Session, items: list[dict], *, now: datetime,
                               source: str = "transactions") -> ImportReport:
    """Upsert transactions given as JSON objects, all or nothing (the HTTP API)."""
    return upsert_transactions(db, records(items, TRANSACTION_COLUMNS, OPTIONAL_TRANSACTION_COLUMNS), now=now,
                               where=_Where(source, "index"))


def upsert_merchants(db: Session, rows: list[tuple[int, dict[str, str] | None]], *, now: datetime,
                     where: _Where) -> ImportReport:
    """Validate every merchant row, then upsert them all (nothing when one is bad)."""
    seen: set[str] = set()

    def check(row: dict[str, str]) -> dict[str, str] | tuple[str, str]:
        problem = _merchant_problem(row, seen)
        seen.add(row["merchant_id"])
        return problem or row

    good = _checked(rows, where, check)
    created = updated = 0
    existing = {m.merchant_id: m for m in db.scalars(select(Merchant).where(Merchant.merchant_id.in_(seen)))}
    for row in good:
        merchant = existing.get(row["merchant_id"])
        email = row["support_email"].lower()
        if merchant is None:
            db.add(Merchant(merchant_id=row["merchant_id"], name=row["name"], support_email=email,
                            locale=row["locale"], address_invalid=False, updated_at=now))
            created += 1
            continue
        if merchant.support_email != email:
            merchant.address_invalid = False
            merchant.address_invalid_reason = None
            merchant.address_invalid_at = None
            delivery_trouble.clear(merchant)  # a new address starts with a clean record
        merchant.name, merchant.support_email, merchant.locale, merchant.updated_at = row["name"], email, row["locale"], now
        updated += 1
    db.flush()
    return ImportReport(created, updated)


def _checked(rows: list[tuple[int, dict[str, str] | None]], where: _Where, check) -> list:
    """What `check` makes of each row (its values, or (column, problem)); every bad row is
    reported together and nothing is returned when one is bad (ImportError)."""
    problems: list[str] = []
    found: list[RowProblem] = []
    good = []
    for line, row in rows:
        if row is None:
            problems.append(where.too_many_fields(line))
            found.append(RowProblem(line, None, "more fields than columns"))
            continue
        result = check(row)
        if isinstance(result, tuple):
            problems.append(where.problem(line, *result))
            found.append(RowProblem(line, *result))
        else:
            good.append(result)
    _raise_if_any(problems, found)
    return good


def _merchant_problem(row: dict[str, str], seen: set[str]) -> tuple[str, str] | None:
    """(column, problem) for the first thing wrong with a merchant row, or None."""
    if not row["merchant_id"]:
        return "merchant_id", "empty"
    if row["merchant_id"] in seen:
        return "merchant_id", f"{row['merchant_id']!r} appears twice in the file"
    if not row["name"]:
        return "name", "empty"
    if not _EMAIL_RE.match(row["support_email"]):
        return "support_email", f"not an email address: {row['support_email']!r}"
    if row["locale"] not in LOCALES:
        return "locale", f"must be one of {', '.join(LOCALES)}, got {row['locale']!r}"
    return None


def import_transactions(db: Session, path: Path, *, now: datetime) -> ImportReport:
    """Upsert transactions; every merchant_id must exist (in the database already)."""
    return upsert_transactions(db, _rows(path, TRANSACTION_COLUMNS, OPTIONAL_TRANSACTION_COLUMNS), now=now,
                               where=_Where(str(path), "line"))


def upsert_transactions(db: Session, rows: list[tuple[int, dict[str, str] | None]], *, now: datetime,
                        where: _Where) -> ImportReport:
    """Validate every transaction row, then upsert them all (nothing when one is bad)."""
    merchants = set(db.scalars(select(Merchant.merchant_id)))
    seen: set[str] = set()

    def check(row: dict[str, str]) -> dict | tuple[str, str]:
        values = _transaction_values(row, seen, merchants)
        seen.add(row["reference"].lower())
        return values

    parsed = _checked(rows, where, check)
    existing = {t.reference_key: t for t in db.scalars(select(Transaction).where(Transaction.reference_key.in_(seen)))}
    created = updated = 0
    for values in parsed:
        current = existing.get(values["reference_key"])
        if current is None:
            db.add(Transaction(**values, updated_at=now))
            created += 1
        else:
            for key, value in values.items():
                if key != "reference":
                    setattr(current, key, value)
            current.updated_at = now
            updated += 1
    db.flush()
    return ImportReport(created, updated)


def _transaction_values(row: dict[str, str], seen: set[str], merchants: set[str]) -> dict | tuple[str, str]:
    """The column values of a transaction row, or (column, problem) for the first thing wrong."""
    reference = row["reference"]
    if not _REFERENCE_RE.match(reference):
        return "reference", f"4 to 64 letters, digits or _ . / - expected, got {reference!r}"
    if reference.lower() in seen:
        return "reference", f"{reference!r} appears twice in the file"
    if row["merchant_id"] not in merchants:
        return "merchant_id", f"unknown merchant {row['merchant_id']!r} (import merchants first)"
    if not _EMAIL_RE.match(row["customer_email"]):
        return "customer_email", f"not an email address: {row['customer_email']!r}"
    try:
        amount = Decimal(row["amount"])
        if not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT:
            raise InvalidOperation
    except InvalidOperation:
        return "amount", f"not a number from 0 to {MAX_AMOUNT - 1}: {row['amount']!r}"
    if not _CURRENCY_RE.match(row["currency"].upper()):
        return "currency", f"three-letter ISO 4217 code expected, got {row['currency']!r}"
    if row["customer_locale"] and row["customer_locale"] not in LOCALES:
        return "customer_locale", f"must be empty or one of {', '.join(LOCALES)}"
    try:
        when = parse_date(row["transaction_date"])
    except ValueError:
        return "transaction_date", f"not an ISO 8601 date: {row['transaction_date']!r}"
    return {
        "reference": reference, "reference_key": reference.lower(), "merchant_id": row["merchant_id"],
        "customer_email": row["customer_email"].lower(), "customer_name": row["customer_name"],
        "amount": amount.quantize(Decimal("0.01")), "currency": row["currency"].upper(), "transaction_date": when,
        "customer_locale": row["customer_locale"] or None,
    }
