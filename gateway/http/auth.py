"""Bearer tokens: each configured token has a name (logged with every call) and scopes."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.http.problems import Problem, unauthorized
from gateway.settings import ApiToken, HttpSettings


BEARER = HTTPBearer(auto_error=False, description="A token of [http.api_tokens]")


def token_for(http: HttpSettings, authorization: str | None) -> ApiToken:
    """The configured token an Authorization header carries; Problem 401 otherwise. Every
    token is compared (constant time), so timing says nothing about which one was close."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("send Authorization: Bearer <token>")
    value = value.strip().encode()
    found = None
    for token in http.api_tokens:
        if hmac.compare_digest(token.token.encode(), value):
            found = token
    if found is None:
        raise unauthorized("the bearer token is not one of [http.api_tokens]")
    return found


def require(scope: str):
    """A FastAPI dependency: the calling token's name, if it has `scope` (403 otherwise)."""

    def dependency(request: Request, _documented: HTTPAuthorizationCredentials | None = Depends(BEARER)) -> str:
        token = token_for(request.app.state.runtime.settings.http, request.headers.get("authorization"))
        request.state.token_name = token.name
        if scope not in token.scopes:
            raise Problem(403, "forbidden", "Missing scope", f"token {token.name!r} lacks the scope {scope!r}")
        return token.name

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency
