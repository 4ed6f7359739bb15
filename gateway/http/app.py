"""The ASGI application (FastAPI): the JSON API under /v1, the status pages under /status,
and /openapi.json. Routes are thin: they check the token, then call one gateway function in
one unit of work; after the commit, what it queued is handed to the delivery actor."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import __version__, importer, status_links, store
from gateway.db import DatabaseUnavailable
from gateway.http import opening, status_page, views
from gateway.http.auth import require
from gateway.http.problems import MEDIA_TYPE, Problem
from gateway.http.schemas import (CaseDetail, CaseList, CaseOpened, Merchants, OpenCase, ProblemDetails,
                                  Transactions, Upserted)
from gateway.models import Case

log = logging.getLogger(__name__)
MAX_LIMIT = 200


def _problems(*codes: int) -> dict:
    return {code: {"model": ProblemDetails} for code in codes}


def create_app(runtime) -> FastAPI:
    """The application of one gateway process (`runtime`: workers.runtime.Runtime)."""
    app = FastAPI(title="Dispute gateway API", version=__version__, openapi_url="/openapi.json", docs_url=None,
                  redoc_url=None, description="Open and follow dispute cases; push transactions and merchants. "
                  "Errors are RFC 9457 problem details. Authenticate with Authorization: Bearer <token>.")
    app.state.runtime = runtime
    _handlers(app)

    @app.middleware("http")
    async def log_calls(request: Request, call_next):
        started = time.monotonic()
        limit = runtime.settings.smtp_ingress.max_message_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            response = Problem(413, "too-large", "Request too large",
                               f"the body is over {limit} bytes").response(request.url.path)
        else:
            response = await call_next(request)
        token = getattr(request.state, "token_name", None)
        log.info("http %s %s -> %s [token %s] %.0f ms", request.method, request.url.path, response.status_code,
                 token or "-", (time.monotonic() - started) * 1000)
        return response

    auth_errors = _problems(400, 401, 403)  # 400: a body that is not JSON

    @app.post("/v1/cases", status_code=201, response_model=CaseOpened, tags=["cases"],
              summary="Open a case (or join the transaction's open case)",
              responses={**auth_errors, **_problems(404, 409, 413, 422, 503)})
    def open_case(body: OpenCase, request: Request, token: Annotated[str, Depends(require("cases:write"))],
                  idempotency_key: Annotated[str | None, Header(max_length=255, min_length=1,
                                                                 pattern=r"^[\x21-\x7e]+$")] = None):
        answer = opening.open_case(runtime, body, token_name=token, idempotency_key=idempotency_key,
                                   path=request.url.path)
        for outbox_id in answer.outbox_ids:
            runtime.enqueue_delivery(outbox_id)
        headers = {"Location": answer.body["url"]}
        if answer.replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)

    @app.get("/v1/cases/{reference}", response_model=CaseDetail, tags=["cases"], summary="Read a case",
             responses={**auth_errors, **_problems(404, 503)})
    def read_case(reference: Annotated[str, Path(max_length=16)],
                  token: Annotated[str, Depends(require("cases:read"))]):
        with runtime.database.unit_of_work() as db:
            case = store.case_by_reference(db, reference)
            if case is None:
                raise Problem(404, "not-found", "No such case", f"no case has the reference {reference!r}")
            return views.detail(db, case, runtime.settings)

    @app.get("/v1/customers/{customer_email}/cases", response_model=CaseList, tags=["cases"],
             summary="List a customer's cases, newest first", responses={**auth_errors, **_problems(503)})
    def customer_cases(customer_email: Annotated[str, Path(max_length=320)],
                       token: Annotated[str, Depends(require("cases:read"))],
                       limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
                       offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
        with runtime.database.unit_of_work() as db:
            return views.listing(db, Case.customer_email == customer_email.strip().lower(), limit=limit,
                                 offset=offset)

    @app.get("/v1/merchants/{merchant_id}/cases", response_model=CaseList, tags=["cases"],
             summary="List a merchant's cases, newest first", responses={**auth_errors, **_problems(503)})
    def merchant_cases(merchant_id: Annotated[str, Path(max_length=64)],
                       token: Annotated[str, Depends(require("cases:read"))],
                       limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
                       offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
        with runtime.database.unit_of_work() as db:
            return views.listing(db, Case.merchant_id == merchant_id, limit=limit, offset=offset)

    @app.post("/v1/merchants", response_model=Upserted, tags=["records"],
              summary="Create or update merchants, all or nothing (the CSV import's checks)",
              responses={**auth_errors, **_problems(413, 422, 503)})
    def upsert_merchants(body: Merchants, token: Annotated[str, Depends(require("merchants:write"))]):
        return _upsert(runtime, importer.upsert_merchant_records, [i.model_dump() for i in body.items], token,
                       "merchants")

    @app.post("/v1/transactions", response_model=Upserted, tags=["records"],
              summary="Create or update transactions, all or nothing (the CSV import's checks)",
              responses={**auth_errors, **_problems(413, 422, 503)})
    def upsert_transactions(body: Transactions, token: Annotated[str, Depends(require("transactions:write"))]):
        return _upsert(runtime, importer.upsert_transaction_records, [i.model_dump() for i in body.items], token,
                       "transactions")

    @app.get("/status/{token}", response_class=HTMLResponse, include_in_schema=False)
    def status(token: str, lang: str | None = None):
        settings = runtime.settings
        access = status_links.verify(token, keys=settings.gateway.secret_keys, now=runtime.now())
        locale = lang if lang in status_page.TEXT else settings.gateway.default_locale
        headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex",
                   "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; "
                                              "frame-ancestors 'none'", "Referrer-Policy": "no-referrer"}
        if isinstance(access, str):
            page = status_page.render_error(locale, expired=access == "expired", brand=settings.gateway.display_name)
            return HTMLResponse(page, status_code=410 if access == "expired" else 404, headers=headers)
        with runtime.database.unit_of_work() as db:
            page = status_page.render(db, access, settings, lang=lang)
        if page is None:
            return HTMLResponse(status_page.render_error(locale, expired=False, brand=settings.gateway.display_name),
                                status_code=404, headers=headers)
        return HTMLResponse(page, headers=headers)

    app.openapi = lambda: _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's description, with every error answer described as what it is: an RFC 9457
    problem (application/problem+json), never FastAPI's default validation error body."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        problem = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    if code[0] in "45":
                        response["content"] = problem
                        response["description"] = response.get("description") or "Problem details"
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def _upsert(runtime, upsert, items: list[dict], token: str, what: str) -> dict:
    try:
        with runtime.database.unit_of_work() as db:
            report = upsert(db, items, now=runtime.now())
    except importer.ImportError_ as error:
        raise Problem(422, "invalid-rows", f"Invalid {what}",
                      f"{error.total} bad item(s); nothing was saved. {error}",
                      errors=[{"index": r.row, "field": r.column, "problem": r.problem} for r in error.rows]) from None
    log.info("api upsert %s by %s: %s created, %s updated", what, token, report.created, report.updated)
    return {"created": report.created, "updated": report.updated}


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def problem(request: Request, error: Problem):
        return error.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or None,
                   "problem": e.get("msg", "invalid")} for e in error.errors()]
        first = errors[0] if errors else {"field": None, "problem": "invalid"}
        detail = f"{first['field']}: {first['problem']}" if first["field"] else first["problem"]
        return Problem(422, "invalid-request", "Invalid request", detail, errors=errors).response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        titles = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}
        return Problem(error.status_code, "http-" + str(error.status_code), titles.get(error.status_code, "Error"),
                       str(error.detail)).response(request.url.path)

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(request: Request, error: DatabaseUnavailable):
        log.warning("http %s %s: database unavailable: %s", request.method, request.url.path, error)
        return Problem(503, "unavailable", "Try again later", "the database is unavailable",
                       headers={"Retry-After": "30"}).response(request.url.path)
