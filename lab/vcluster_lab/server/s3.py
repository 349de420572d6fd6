"""The site's object store: S3 (path-style, SigV4) under ``/s3``, and CSM's STS under ``/apis/sts``.

Both site kinds have an S3 store next to their boot images: OpenCHAMI runs MinIO (image-builder
publishes with static keys, ``S3_ACCESS``/``S3_SECRET``), CSM runs Ceph RGW and hands out
temporary credentials through its simple token service (``PUT /apis/sts/token`` with a site
token answers ``{"Credentials": {AccessKeyId, SecretAccessKey, SessionToken, Expiration,
EndpointURL}}``). hpc.vcluster keeps its release records there.

The lab serves the subset a client needs: create a bucket (``PUT /s3/<bucket>``, 409
``BucketAlreadyOwnedByYou`` when it exists), put, get and delete objects, ListObjectsV2
(``GET /s3/<bucket>?list-type=2&prefix=...``, paged with continuation tokens), errors as S3's
XML ``<Error><Code>``. Every request must carry a valid AWS Signature Version 4 for the lab's
static key pair (credentials.json ``s3``) or for live STS credentials (with their
``x-amz-security-token``); the signature is checked over the request as received.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

from ..tokens import TokenError, bearer
from .common import lab, reply, text

bp = Blueprint("s3", __name__)
sts_bp = Blueprint("sts", __name__)

BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
STS_LIFETIME = 3600
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def s3_error(status: int, code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
            f"<Resource>{escape(request.path)}</Resource><RequestId>{secrets.token_hex(8)}</RequestId></Error>")
    return Response(body, status=status, content_type="application/xml")


def _enc(text_: str, safe: str = "-_.~") -> str:
    return quote(text_, safe=safe)


def _secret_for(access_key: str) -> tuple[str, str | None] | None:
    """(secret, session token or None) of a key the lab knows: its static pair or live STS credentials."""
    static = lab().creds.s3()
    if secrets.compare_digest(access_key, static["access_key"]):
        return static["secret_key"], None
    issued = lab().store.kv_get(f"sts.{access_key}")
    if issued and issued["expires"] > time.time():
        return issued["secret"], issued["token"]
    return None


def _verify() -> Response | None:
    """None when the request's SigV4 signature is right, else S3's error reply."""
    m = _AUTH.match(request.headers.get("Authorization", ""))
    if not m:
        return s3_error(403, "AccessDenied", "requests must be signed with AWS Signature Version 4")
    access_key, day, region, names, signature = m.groups()
    known = _secret_for(access_key)
    if known is None:
        return s3_error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    secret, token = known
    if token is not None and not secrets.compare_digest(request.headers.get("x-amz-security-token", ""), token):
        return s3_error(403, "InvalidToken", "The provided token is malformed or otherwise invalid.")
    amz_date = request.headers.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return s3_error(403, "AccessDenied", "x-amz-date is missing or malformed")
    if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 900 or amz_date[:8] != day:
        return s3_error(403, "RequestTimeTooSkewed", "The difference between the request time and the server's "
                                                     "time is too large.")
    payload = request.headers.get("x-amz-content-sha256", "")
    body = request.get_data(cache=True)
    if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
        return s3_error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not "
                                                          "match what was computed.")
    signed = names.split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return s3_error(403, "AccessDenied", "host and x-amz-date must be signed")
    raw_path = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
    path = raw_path.split("?", 1)[0]
    pairs = []
    for item in [p for p in request.query_string.decode("latin-1").split("&") if p]:
        k, _, v = item.partition("=")
        pairs.append((unquote(k), unquote(v)))
    canonical_query = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(pairs))
    headers = "".join(f"{n}:{' '.join(request.headers.get(n, '').split())}\n" for n in signed)
    canonical = "\n".join([request.method, path, canonical_query, headers, names, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not secrets.compare_digest(expected, signature):
        return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                      "signature you provided.")
    return None


@bp.before_request
def _auth():
    return _verify()


def _bucket_or_error(bucket: str) -> Response | None:
    if lab().store.doc_get("s3.bucket", bucket) is None:
        return s3_error(404, "NoSuchBucket", "The specified bucket does not exist")
    return None


@bp.route("/<bucket>", methods=["PUT"])
def create_bucket(bucket: str):
    if not BUCKET.match(bucket):
        return s3_error(400, "InvalidBucketName", "The specified bucket is not valid.")
    if not lab().store.doc_insert("s3.bucket", bucket, {"name": bucket, "created": time.time()}):
        return s3_error(409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                                                        "succeeded and you already own it.")
    return Response("", status=200, headers={"Location": f"/{bucket}"})


@bp.route("/<bucket>", methods=["GET"])
def list_objects(bucket: str):
    missing = _bucket_or_error(bucket)
    if missing:
        return missing
    args = request.args
    prefix = args.get("prefix", "")
    try:
        limit = max(1, min(1000, int(args.get("max-keys", "1000"))))
    except ValueError:
        return s3_error(400, "InvalidArgument", "max-keys must be an integer")
    start = args.get("continuation-token") or args.get("start-after") or ""
    objects = sorted((o for o in lab().store.doc_list("s3.object")
                      if o["bucket"] == bucket and o["key"].startswith(prefix) and o["key"] > start),
                     key=lambda o: o["key"])
    page, more = objects[:limit], len(objects) > limit
    items = "".join(
        f"<Contents><Key>{escape(o['key'])}</Key><LastModified>{o['modified']}</LastModified>"
        f"<ETag>&quot;{o['etag']}&quot;</ETag><Size>{o['size']}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        for o in page)
    token = f"<NextContinuationToken>{escape(page[-1]['key'])}</NextContinuationToken>" if more else ""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{_NS}"><Name>{bucket}</Name>'
            f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount><MaxKeys>{limit}</MaxKeys>"
            f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>{token}{items}</ListBucketResult>")
    return Response(body, status=200, content_type="application/xml")


@bp.route("/<bucket>/<path:key>", methods=["PUT"])
def put_object(bucket: str, key: str):
    missing = _bucket_or_error(bucket)
    if missing:
        return missing
    body = request.get_data(cache=True)
    etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
    modified = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    lab().store.doc_put("s3.object", f"{bucket}/{key}", {
        "bucket": bucket, "key": key, "etag": etag, "size": len(body), "modified": modified,
        "content_type": request.headers.get("Content-Type", "binary/octet-stream"),
        "body": base64.b64encode(body).decode()})
    return Response("", status=200, headers={"ETag": f'"{etag}"'})


@bp.route("/<bucket>/<path:key>", methods=["GET"])
def get_object(bucket: str, key: str):
    missing = _bucket_or_error(bucket)
    if missing:
        return missing
    obj = lab().store.doc_get("s3.object", f"{bucket}/{key}")
    if obj is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    return Response(base64.b64decode(obj["body"]), status=200, content_type=obj["content_type"],
                    headers={"ETag": f'"{obj["etag"]}"', "Last-Modified": obj["modified"]})


@bp.route("/<bucket>/<path:key>", methods=["DELETE"])
def delete_object(bucket: str, key: str):
    missing = _bucket_or_error(bucket)
    if missing:
        return missing
    lab().store.doc_delete("s3.object", f"{bucket}/{key}")
    return Response("", status=204)


@sts_bp.route("/token", methods=["PUT"])
def sts_token():
    """CSM's simple token service: temporary S3 credentials for a valid site (Keycloak) token."""
    try:
        lab().tokens.verify(bearer(request.headers), ("keycloak",))
    except TokenError:
        return text("Unauthorized Request", 403)
    access, secret, token = ("STS" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30),
                             secrets.token_urlsafe(48))
    expires = time.time() + STS_LIFETIME
    lab().store.kv_set(f"sts.{access}", {"secret": secret, "token": token, "expires": expires})
    return reply({"Credentials": {
        "AccessKeyId": access, "SecretAccessKey": secret, "SessionToken": token,
        "Expiration": datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).isoformat(),
        "EndpointURL": request.host_url.rstrip("/") + "/s3"}})
