# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for the site's S3 object store, the one store both site kinds have.

OpenCHAMI sites keep boot images in MinIO (image-builder publishes there with static keys,
research-openchami.md §7); CSM sites in Ceph RGW, whose temporary credentials the site's
STS hands out for a site token (``PUT /apis/sts/token``). hpc.vcluster keeps release records
there, next to the images, so a release outlives the controller that wrote it.

Requests are signed with AWS Signature Version 4 (path-style URLs). The signer is the few
lines of the published algorithm over hashlib/hmac rather than botocore: the collection
needs four S3 calls, not an SDK of 80 MB on every controller and execution environment. A
unit test pins it to AWS's published example.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import os
from xml.etree import ElementTree

from urllib.parse import quote, unquote, urlsplit

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, decode_json
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

# The store's options, each with its environment variable (AWX credential types inject them).
S3_OPTION_ENV = {
    "s3_url": ["VCLUSTER_S3_URL"],
    "s3_access_key": ["VCLUSTER_S3_ACCESS_KEY", "S3_ACCESS"],
    "s3_secret_key": ["VCLUSTER_S3_SECRET_KEY", "S3_SECRET"],
    "s3_region": ["VCLUSTER_S3_REGION"],
}


def _hmac(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _uri_encode(text, safe="-_.~"):
    return quote(text, safe=safe)


def canonical_query(pairs):
    return "&".join("%s=%s" % (_uri_encode(k), _uri_encode(v)) for k, v in sorted(pairs))


def sign_v4(method, url, headers, payload_sha256, access_key, secret_key, region, amz_date, service="s3"):
    """The Authorization header of a request (SigV4); ``headers`` must hold every header to sign.

    ``url`` is the full URL as sent (its path already URI-encoded, its query in any order).
    """
    parts = urlsplit(url)
    query = []
    for item in [p for p in parts.query.split("&") if p]:
        key, sep, value = item.partition("=")
        query.append((unquote(key), unquote(value) if sep else ""))
    names = sorted(h.lower() for h in headers)
    lowered = dict((k.lower(), " ".join(str(v).split())) for k, v in headers.items())
    canonical = "\n".join([
        method.upper(), parts.path or "/", canonical_query(query),
        "".join("%s:%s\n" % (n, lowered[n]) for n in names), ";".join(names), payload_sha256])
    day = amz_date[:8]
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode("utf-8"), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access_key, scope, ";".join(names), signature)


class S3Credentials(object):
    def __init__(self, endpoint, access_key, secret_key, session_token=None, region="us-east-1"):
        self.endpoint = endpoint.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key
        self.session_token = session_token
        self.region = region or "us-east-1"


def site_s3_credentials(clients, options):
    """Where the site's S3 is and how to sign for it.

    Static keys (options or ``VCLUSTER_S3_*``; image-builder's ``S3_ACCESS``/``S3_SECRET``) win;
    otherwise a CSM site's STS trades the site token for temporary RGW credentials.
    """
    def opt(name):
        value = options.get(name)
        if value in (None, ""):
            for env in S3_OPTION_ENV[name]:
                if os.environ.get(env):
                    return os.environ[env]
        return value

    url, access, secret, region = opt("s3_url"), opt("s3_access_key"), opt("s3_secret_key"), opt("s3_region")
    if access or secret:
        if not (access and secret and url):
            raise SiteError("the site's S3 store needs s3_url, s3_access_key and s3_secret_key together "
                            "(VCLUSTER_S3_URL, VCLUSTER_S3_ACCESS_KEY, VCLUSTER_S3_SECRET_KEY)")
        return S3Credentials(url, access, secret, None, region)
    if clients.site.kind == "csm":
        reply = decode_json(clients.transport.request("PUT", clients.site.service_url("sts") + "/token",
                                                      service="sts"), "sts") or {}
        creds = reply.get("Credentials") or {}
        if not (creds.get("AccessKeyId") and creds.get("SecretAccessKey")):
            raise ApiError("STS PUT /token: the reply has no Credentials")
        return S3Credentials(url or creds.get("EndpointURL") or "", creds["AccessKeyId"], creds["SecretAccessKey"],
                             creds.get("SessionToken"), region)
    raise SiteError("the release store is the site's S3 (MinIO on OpenCHAMI): set s3_url, s3_access_key and "
                    "s3_secret_key (VCLUSTER_S3_URL, VCLUSTER_S3_ACCESS_KEY, VCLUSTER_S3_SECRET_KEY)")


class S3Client(object):
    """Buckets and objects, path-style, every request signed."""

    LIST_PAGE = 1000

    def __init__(self, transport, credentials, clock=None):
        if not credentials.endpoint:
            raise SiteError("no S3 endpoint: set s3_url (VCLUSTER_S3_URL)")
        self.transport = transport
        self.creds = credentials
        self._clock = clock or (lambda: datetime.datetime.now(datetime.timezone.utc))

    def _url(self, bucket, key=None, query=None):
        path = "/" + _uri_encode(bucket, safe="-_.~")
        if key is not None:
            path += "/" + _uri_encode(key, safe="-_.~/")
        url = self.creds.endpoint + path
        if query:
            url += "?" + canonical_query(query)
        return url

    def _send(self, method, bucket, key=None, query=None, body=b"", content_type=None, expect=(200,)):
        url = self._url(bucket, key, query)
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        headers = {"Host": urlsplit(url).netloc, "x-amz-content-sha256": payload,
                   "x-amz-date": self._clock().strftime("%Y%m%dT%H%M%SZ")}
        if self.creds.session_token:
            headers["x-amz-security-token"] = self.creds.session_token
        if content_type:
            headers["Content-Type"] = content_type
        headers["Authorization"] = sign_v4(method, url, headers, payload, self.creds.access_key,
                                           self.creds.secret_key, self.creds.region, headers["x-amz-date"])
        send = dict(headers)
        del send["Host"]  # requests sends the same one
        return self.transport.request(method, url, service="s3", data=body or None, headers=send, auth=False,
                                      expect=expect)

    def create_bucket(self, bucket):
        """Create ``bucket``; True if it was made, False if it was there."""
        reply = self._send("PUT", bucket, expect=(200, 409))
        return reply.status_code == 200

    def put(self, bucket, key, body, content_type="application/json"):
        """Write an object, making the bucket on first use; returns its ETag."""
        reply = self._send("PUT", bucket, key, body=body, content_type=content_type, expect=(200, 404))
        if reply.status_code == 404:
            self.create_bucket(bucket)
            reply = self._send("PUT", bucket, key, body=body, content_type=content_type)
        return (reply.headers.get("ETag") or "").strip('"')

    def get(self, bucket, key):
        """An object's bytes, or None when it (or its bucket) does not exist."""
        reply = self._send("GET", bucket, key, expect=(200, 404))
        return reply.content if reply.status_code == 200 else None

    def delete(self, bucket, key):
        self._send("DELETE", bucket, key, expect=(200, 204, 404))

    def keys(self, bucket, prefix=""):
        """Every key under ``prefix`` (ListObjectsV2, all pages); [] when the bucket does not exist."""
        out, token = [], None
        while True:
            query = [("list-type", "2"), ("prefix", prefix), ("max-keys", str(self.LIST_PAGE))]
            if token:
                query.append(("continuation-token", token))
            reply = self._send("GET", bucket, query=query, expect=(200, 404))
            if reply.status_code == 404:
                return []
            try:
                root = ElementTree.fromstring(reply.content)
            except ElementTree.ParseError:
                raise ApiError("S3 GET /%s: the listing is not XML" % bucket)
            out.extend(el.text for el in root.iter(_NS + "Key"))
            truncated = (root.findtext(_NS + "IsTruncated") or "false").lower() == "true"
            token = root.findtext(_NS + "NextContinuationToken")
            if not truncated or not token:
                return sorted(out)
