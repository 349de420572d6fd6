"""What every service module shares: replies in each service's style, query parsing, auth.

Error styles differ per real service and the lab keeps them apart:
* SMD, BSS, PCS, BOS, IMS: RFC 7807 ``application/problem+json``;
* cloud-init and the OpenCHAMI JWT middleware: plain text (``http.Error``);
* the CSM API gateway (Istio + cray-opa): plain text, 403 ``Unauthorized Request`` when
  no acceptable token is present, 401 ``Jwt ...`` when a token fails verification;
* fabric manager: Xenon ``{"message","statusCode","errorCode","documentKind"}``.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable
from urllib.parse import parse_qsl

from flask import Response, current_app, g, request

from ..tokens import TokenError, bearer

HTTP_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
               405: "Method Not Allowed", 409: "Conflict", 422: "Unprocessable Entity",
               500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
               504: "Gateway Timeout"}


def lab():
    """The running lab (store, driver, tokens, engines) of this app."""
    return current_app.extensions["vclab"]


def face() -> str:
    """``csm`` when the request came in on a CSM path (``/apis/...``), else ``openchami``."""
    return "csm" if (request.blueprint or "").endswith("_csm") else "openchami"


class ApiError(Exception):
    """An error reply; raised anywhere in a handler, rendered by the app's error handler."""

    def __init__(self, status: int, detail: str, style: str = "problem", headers: dict | None = None,
                 title: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.style, self.headers, self.title = status, detail, style, headers or {}, title

    def response(self) -> Response:
        if self.style == "text":
            resp = go_error(self.detail, self.status)
        elif self.style == "xenon":
            resp = xenon_error(self.status, self.detail)
        elif self.style == "json":
            resp = reply({"error": self.detail}, self.status)
        else:
            resp = problem(self.status, self.detail, self.title)
        for k, v in self.headers.items():
            resp.headers[k] = v
        return resp


def reply(obj: Any, status: int = 200, headers: dict | None = None,
          content_type: str = "application/json") -> Response:
    body = json.dumps(obj, separators=(",", ":")) + "\n"
    resp = Response(body, status=status, content_type=content_type)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def empty(status: int = 204, headers: dict | None = None) -> Response:
    resp = Response(b"", status=status)
    resp.headers.pop("Content-Type", None)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def text(body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(body, status=status, content_type=content_type)


def go_error(message: str, status: int) -> Response:
    """Go's ``http.Error``: text/plain, the message and a newline."""
    return text(message + "\n" if message else "", status)


def problem(status: int, detail: str, title: str | None = None, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title or HTTP_TITLES.get(status, "Error"),
            "detail": detail, "status": status}
    body.update(extra)
    return reply(body, status, content_type="application/problem+json")


def xenon_error(status: int, message: str) -> Response:
    return reply({"message": message, "statusCode": status, "errorCode": 0,
                  "documentKind": "com:vmware:xenon:common:ServiceErrorResponse"}, status)


def query() -> dict[str, list[str]]:
    """Query parameters with lower-cased keys, repeated keys kept in order (Go's r.Form, matched case-insensitively)."""
    out: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True):
        out.setdefault(key.lower(), []).append(value)
    return out


def json_body(error: Callable[[str], ApiError], allow_empty: bool = False) -> Any:
    """The request's JSON body; ``error(msg)`` builds the service-specific reply when it does not parse."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if allow_empty:
            return None
        raise error("unexpected end of JSON input")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(str(exc)) from None


# ---------------------------------------------------------------------------- auth
def _claims_roles(claims: dict) -> list[str]:
    return list(((claims.get("resource_access") or {}).get("shasta") or {}).get("roles") or [])


# cray-opa role_perms, restricted to the services the lab serves (method, path regex).
_OPA_PERMS: dict[str, list[tuple[str, str]]] = {
    "admin": [(m, r".*") for m in ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD")],
    "wlm": [("GET", r"^/apis/smd/.*$"), ("HEAD", r"^/apis/smd/.*$")]
    + [(m, r"^/apis/bos/.*$") for m in ("GET", "HEAD", "POST", "PATCH", "DELETE")],
    "system-pxe": [(m, r"^/apis/bss/.*$") for m in ("GET", "HEAD", "POST")],
    "system-compute": [("GET", r"^/apis/smd/.*$"), ("HEAD", r"^/apis/smd/.*$")],
    "user": [],
}


def opa_allows(claims: dict, method: str, path: str) -> bool:
    for role in _claims_roles(claims):
        for m, rx in _OPA_PERMS.get(role, []):
            if m == method and re.match(rx, path):
                return True
    return False


def check_openchami_auth() -> Response | None:
    """OpenCHAMI services' own JWT check (jwtauth): 401 text/plain, signature + sub/iss/aud only."""
    try:
        kind, claims = lab().tokens.verify(bearer(request.headers), ("openchami",))
    except TokenError as exc:
        return go_error(str(exc), 401)
    g.token_kind, g.claims = kind, claims
    return None


_GATEWAY_401 = {"expired": "Jwt is expired", "invalid": "Jwt verification fails",
                "claims": "Jwt verification fails", "issuer": "Jwt issuer is not configured"}


def check_gateway_auth(also_openchami: bool = False) -> Response | None:
    """The CSM API gateway: Istio verifies a present JWT (401), cray-opa wants a role (403)."""
    token = bearer(request.headers)
    if not token:
        return text("Unauthorized Request", 403)
    kinds = ("keycloak", "openchami") if also_openchami else ("keycloak",)
    try:
        kind, claims = lab().tokens.verify(token, kinds)
    except TokenError as exc:
        return text(_GATEWAY_401.get(exc.reason, "Jwt verification fails"), 401)
    if kind == "keycloak" and ("shasta" not in (claims.get("aud") or [])
                               or not opa_allows(claims, request.method, request.path)):
        return text("Unauthorized Request", 403)
    g.token_kind, g.claims = kind, claims
    return None


def check_face_auth(public: bool = False) -> Response | None:
    """Auth for a service mounted on both faces: the OpenCHAMI service check or the CSM gateway."""
    if face() == "csm":
        return check_gateway_auth()
    if public:
        return None
    return check_openchami_auth()
