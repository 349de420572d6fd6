# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP transport every service client uses.

One requests session per site (connection reuse is what keeps a 10,000-node inventory at
a handful of round trips), retries with jittered exponential backoff where retrying is
safe, exactly one token refresh on a 401, and errors turned into one readable line that
names the service, the call and what the server said. Nothing secret (Authorization
headers, token replies, request bodies) ever goes into an error or a log line.
"""
from __future__ import annotations

import json
import os
import random
import time
import traceback

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the caller with missing_required_lib
    requests = None
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

USER_AGENT = "hpc.vcluster/0.1.0"

# Statuses that mean "not processed, try again later": safe to retry for any method.
RETRY_ANY_METHOD = frozenset((429, 502, 503, 504))
# A 500 may have been half-processed: retry only methods that are idempotent.
IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS"))
# When set, the transport appends one JSON line per retry, read-back and token refresh to this file
# (method, path, status: never a header or a body); make bench-faults counts them.
RETRY_LOG_ENV = "VCLUSTER_API_RETRY_LOG"


class ReadBack(object):
    """What ``Transport.request`` returns when a create's reply was lost (a 500, a dropped connection) and
    reading back found the object there: the call took effect, and ``json()`` is what the read gave. Also
    what a DELETE sent again after such a reply returns when the object is gone (404): ``json()`` is None."""

    status_code = 200
    reason = "OK (read back)"
    request = None

    def __init__(self, value):
        self.value = value
        self.headers = {}
        self.content = json.dumps(value).encode("utf-8") if value not in (None, True) else b""
        self.text = self.content.decode("utf-8")

    def json(self):
        return self.value


class ApiError(Exception):
    """A call to a site's service failed. ``str()`` is the readable one-line message."""

    def __init__(self, message, status=None, method=None, url=None, detail=None, body=None):
        super(ApiError, self).__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.detail = detail
        self.body = body

    def to_result(self):
        """The parts of the error a module may return (no secrets: requests bodies are never kept)."""
        return {"status": self.status, "method": self.method, "url": self.url, "detail": self.detail}


def problem_detail(response):
    """What the server said went wrong, from any of the error shapes the real services use.

    RFC 7807 problems (SMD, BSS, PCS, BOS, IMS), plain-text bodies (SMD 401s, cloud-init),
    OAuth errors (token endpoints), Xenon documents (fabric manager) and ``{"message"}``.
    """
    text = response.text or ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if "detail" in body or "title" in body:
            title, detail = body.get("title"), body.get("detail")
            if title and detail and str(detail).lower() != str(title).lower():
                return "%s: %s" % (title, detail)
            return str(detail or title)
        if "error" in body and isinstance(body["error"], str):
            desc = body.get("error_description")
            return "%s: %s" % (body["error"], desc) if desc else body["error"]
        for key in ("message", "err_msg", "errorMessage"):
            if body.get(key):
                return str(body[key])
    text = text.strip()
    if len(text) > 300:
        text = text[:300] + "..."
    return text or (response.reason or "no detail")


class Transport(object):
    """Sends requests for one site: TLS settings, timeout, retries and the token source."""

    def __init__(self, site, token_source=None, retries=4, backoff=0.5, backoff_cap=8.0, sleep=time.sleep):
        if not HAS_REQUESTS:
            raise ApiError("the Python library 'requests' is required on the host that runs this (the controller)")
        self.site = site
        self.token_source = token_source
        self.retries = retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        self.session.verify = site.verify
        self.request_count = 0
        self.retry_count = 0

    def _note(self, event, method, path, status=None):
        """Count a retry, read-back or token refresh; with VCLUSTER_API_RETRY_LOG set, log it (no secrets)."""
        if event == "retry":
            self.retry_count += 1
        log = os.environ.get(RETRY_LOG_ENV)
        if not log:
            return
        line = json.dumps({"time": round(time.time(), 3), "event": event, "method": method, "path": path.split("?", 1)[0],
                           "status": status})
        try:
            with open(log, "a") as handle:
                handle.write(line + "\n")
        except (IOError, OSError):
            pass

    def _delay(self, attempt, response=None):
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after:
            try:
                return min(float(retry_after), self.backoff_cap)
            except ValueError:
                pass
        return min(self.backoff_cap, self.backoff * (2 ** attempt)) * random.uniform(0.5, 1.0)

    def _auth_header(self):
        if self.token_source is None:
            return {}
        token = self.token_source.get()
        return {"Authorization": "Bearer %s" % token} if token else {}

    def request(self, method, url, service="api", params=None, json_body=None, data=None, headers=None,
                auth=True, expect=None, timeout=None, basic_auth=None, idempotent=None, read_back=None):
        """Send one call; returns the response or raises ApiError.

        ``expect``: statuses that count as success (default: any 2xx).
        ``idempotent``: whether sending the call twice does no more than once (default: by method; a POST
        that only queries, or that asks for an end state, says True). Such calls are retried after a 500
        or a connection lost after sending, as GET, PUT and DELETE are.
        ``read_back``: for a create that is not idempotent, a function that reads the object back: None
        when it is absent, else what was read. After a 500 or a lost reply it is called: present means
        the call took effect (a ``ReadBack`` holding the read is returned), absent means it did not and
        the call is sent again. Without it, such a call is not retried (a duplicate could be made).
        """
        method = method.upper()
        safe = (method in IDEMPOTENT_METHODS) if idempotent is None else bool(idempotent)
        call_headers = dict(headers or {})
        refreshed = False
        attempt = 0
        # a DELETE sent again after a reply that may hide its success (a 500, a gateway's 502/504, a
        # lost connection): a 404 then means the earlier one took effect
        deleted_maybe = False
        path = url.split("://", 1)[-1]
        path = path[path.find("/"):] if "/" in path else "/"
        label = "%s %s %s" % (service.upper(), method, path.split("?", 1)[0])
        while True:
            send_headers = dict(call_headers)
            if auth:
                send_headers.update(self._auth_header())
            try:
                self.request_count += 1
                # verify is passed on every call: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in the
                # environment override a session's CA bundle otherwise, and the site's ca_path must win.
                response = self.session.request(
                    method, url, params=params, json=json_body, data=data, headers=send_headers,
                    timeout=timeout or self.site.timeout, auth=basic_auth, verify=self.session.verify,
                )
            except requests.exceptions.SSLError as exc:
                raise ApiError("%s: TLS verification failed for %s (%s); set ca_path to the site's CA bundle"
                               % (label, self.site.api_url, _short(exc)), method=method, url=url)
            except (requests.exceptions.InvalidHeader, ValueError) as exc:
                # requests quotes the offending header, and the Authorization header holds the token
                raise ApiError("%s: the request could not be sent (%s); check that the token is one line with no "
                               "spaces" % (label, type(exc).__name__), method=method, url=url)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                unsent = isinstance(exc, requests.exceptions.ConnectTimeout) or _never_sent(exc)
                if attempt < self.retries and (safe or unsent):
                    deleted_maybe = deleted_maybe or (method == "DELETE" and not unsent)
                    self._note("retry", method, path, None)
                    self._sleep(self._delay(attempt))
                    attempt += 1
                    continue
                if attempt < self.retries and read_back is not None:
                    found = self._read_back(read_back, method, path, None)
                    if found is not None:
                        return ReadBack(found)
                    self._sleep(self._delay(attempt))
                    attempt += 1
                    continue
                raise ApiError("%s: cannot reach %s (%s)" % (label, self.site.api_url, _short(exc)), method=method, url=url)

            status = response.status_code
            if status == 404 and deleted_maybe:
                self._note("gone", method, path, status)
                return ReadBack(None)
            if status == 401 and auth and self.token_source is not None and not refreshed and self.token_source.can_refresh():
                refreshed = True
                self._note("refresh", method, path, status)
                self.token_source.refresh()
                continue
            retryable = status in RETRY_ANY_METHOD or (status == 500 and safe)
            if retryable and attempt < self.retries:
                deleted_maybe = deleted_maybe or (method == "DELETE" and status in (500, 502, 504))
                self._note("retry", method, path, status)
                self._sleep(self._delay(attempt, response))
                attempt += 1
                continue
            if status == 500 and read_back is not None and attempt < self.retries:
                found = self._read_back(read_back, method, path, status)
                if found is not None:
                    return ReadBack(found)
                self._sleep(self._delay(attempt, response))
                attempt += 1
                continue
            ok = (status in expect) if expect else (200 <= status < 300)
            if ok:
                return response
            detail = problem_detail(response)
            hint = ""
            if status == 401:
                hint = "; check the token (token, token_file, %s_ACCESS_TOKEN or client credentials)" % (
                    self.site.name.upper().replace("-", "_"))
            elif status == 403:
                hint = "; the token is valid but not allowed to do this"
            raise ApiError("%s: %d %s: %s%s" % (label, status, response.reason or "", detail, hint),
                           status=status, method=method, url=url, detail=detail, body=_safe_body(response))

    def _read_back(self, read_back, method, path, status):
        """Whether a create whose reply was lost took effect: what ``read_back`` read (None: absent).

        The read is itself retried as any GET is; an error while reading is raised (the caller's call
        is then in an unknown state, and saying so beats making a duplicate)."""
        self._note("read-back", method, path, status)
        found = read_back()
        if found is None:
            self._note("retry", method, path, status)
        return found

    def get_json(self, url, service="api", params=None, expect=None, auth=True):
        return decode_json(self.request("GET", url, service=service, params=params, expect=expect, auth=auth), service)


def decode_json(response, service="api"):
    """The JSON body of a reply, or None for an empty body; a clear error for anything else."""
    if not response.content or not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        raise ApiError("%s: the reply to %s was not JSON (content-type %s)" % (
            service.upper(), response.request.path_url if response.request is not None else "?",
            response.headers.get("Content-Type", "unknown")), status=response.status_code)


def _short(exc):
    text = str(exc)
    # requests wraps urllib3 errors in long reprs; the tail is what an operator needs.
    if "Caused by" in text:
        text = text.split("Caused by", 1)[1].strip(" ()")
    return text[-200:]


def _never_sent(exc):
    """True when the connection failed before the request could reach the server."""
    text = str(exc)
    return any(s in text for s in ("Connection refused", "Name or service not known", "NewConnectionError",
                                   "Failed to establish a new connection"))


def _safe_body(response):
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, (dict, list)) and len(json.dumps(body)) < 4096 else None
