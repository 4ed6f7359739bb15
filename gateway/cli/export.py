"""`cases export` and `cases verify-export`: evidence bundles from the command line."""

from __future__ import annotations

import sys
from pathlib import Path


def run(args, settings) -> int:
    return _export(args, settings) if args.action == "export" else _verify(args, settings)


def _export(args, settings) -> int:
    """Read the case in one short unit of work, write the bundle outside any, record the
    export in another: the ingress is never kept waiting by an export (SQLite has one writer)."""
    from gateway import store
    from gateway.db import Database
    from gateway.export import record, service

    database = Database(settings.database.url)
    now = args.clock.now()
    try:
        with database.unit_of_work() as db:
            case = store.case_by_reference(db, args.reference.strip(), lock=True)
            if case is None:
                print(f"error: no case {args.reference}", file=sys.stderr)
                return 1
            found = record.read(db, case, settings=settings, now=now)
        try:
            result = service.write_bundle(found, redacted=args.redact, out=Path(args.out).resolve() if args.out else None)
        except OSError as error:
            print(f"error: cannot write the bundle: {error}", file=sys.stderr)
            return 1
        with database.unit_of_work() as db:
            service.record_export(db, store.case_by_id(db, found.case.id, lock=True), result, now=now, by="cli",
                                  party=None)
    finally:
        database.dispose()
    print(f"{result.path}")
    print(f"  {result.size} bytes, {len(result.files)} files, transcript {result.pages} page(s), "
          f"{result.events} events in the hash chain{' (redacted)' if result.redacted else ''}")
    print(f"  SHA-256 {result.sha256}")
    print(f"  chain head {result.chain_head}")
    return 0


def _verify(args, settings) -> int:
    from gateway.export import verify

    path = Path(args.file)
    if not path.is_file():
        print(f"error: no file {path}", file=sys.stderr)
        return 1
    report = verify.verify(path, history=lambda reference, redacted: _history(settings, reference, redacted))
    for note in report.notes:
        print(f"ok    {note}")
    for problem in report.problems:
        print(f"FAIL  {problem}")
    print(f"{path}: {'the bundle is intact' if report.ok else f'{len(report.problems)} problem(s) found'}")
    return 0 if report.ok else 1


def _history(settings, reference: str, redacted: bool):
    """The case's linked history from this gateway's database, or None without that case."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway import store
    from gateway.db import Database, DatabaseUnavailable
    from gateway.export import record, service

    database = Database(settings.database.url)
    try:
        with database.unit_of_work() as db:
            case = store.case_by_reference(db, reference)
            if case is None:
                return None
            found = record.read(db, case, settings=settings, now=case.opened_at, evidence=False)
            return service.linked_history(found, redacted=redacted)
    except (DatabaseUnavailable, SQLAlchemyError):
        return None
    finally:
        database.dispose()
