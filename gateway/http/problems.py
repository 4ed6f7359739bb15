"""Errors as RFC 9457 problem details: `application/problem+json` with type, title, status,
detail and, for bad rows or fields, an `errors` list."""

from __future__ import annotations

from fastapi.responses import JSONResponse

PROBLEM_TYPE = "https://dispute-gateway.invalid/problems/"  # + a slug; documented in the README
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An answer that is not a success: raised by a route, turned into a response by the app."""

    def __init__(self, status: int, slug: str, title: str, detail: str, *, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.errors = errors
        self.headers = headers or {}

    def body(self, instance: str) -> dict:
        body = {"type": PROBLEM_TYPE + self.slug, "title": self.title, "status": self.status, "detail": self.detail,
                "instance": instance}
        if self.errors is not None:
            body["errors"] = self.errors
        return body

    def response(self, instance: str) -> JSONResponse:
        return JSONResponse(self.body(instance), status_code=self.status, media_type=MEDIA_TYPE, headers=self.headers)


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Not authenticated", detail,
                   headers={"WWW-Authenticate": 'Bearer realm="dispute-gateway"'})
