"""The S3 client: SigV4 as AWS publishes it, path-style requests, bucket made on first write, listing pages."""
import datetime

import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils._api import Transport
from ansible_collections.hpc.vcluster.plugins.module_utils._s3 import (
    EMPTY_SHA256, S3Client, S3Credentials, sign_v4, site_s3_credentials)
from ansible_collections.hpc.vcluster.plugins.module_utils._site import Site, SiteError

from vc_harness import FakeS3


def test_signature_matches_the_published_aws_example():
    # AWS S3 API reference, "Signature Calculations for the Authorization Header", example GET Object
    headers = {"Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9",
               "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": "20130524T000000Z"}
    auth = sign_v4("GET", "https://examplebucket.s3.amazonaws.com/test.txt", headers, EMPTY_SHA256,
                   "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "20130524T000000Z")
    assert auth == ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def noon():
    return datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def client(session_token=None):
    site = Site.from_options({"site_kind": "openchami", "api_url": "http://api.test"})
    clock = noon
    return S3Client(Transport(site, None, retries=0), S3Credentials("http://s3.test/store", "ak", "sk", session_token),
                    clock=clock)


def test_put_makes_the_bucket_get_and_list_all_pages(rsps):
    store = FakeS3(rsps)
    s3 = client()
    assert s3.keys("releases", "demo/") == [] and s3.get("releases", "demo/000001.json") is None
    for i in range(5):
        assert s3.put("releases", "demo/%06d.json" % (i + 1), b'{"seq": %d}' % (i + 1)) == "abc"
    s3.put("releases", "other/000001.json", b"{}")
    assert s3.keys("releases", "demo/") == ["demo/%06d.json" % (i + 1) for i in range(5)]
    assert s3.get("releases", "demo/000003.json") == b'{"seq": 3}'
    assert ("PUT", "http://s3.test/store/releases") in store.requests  # the bucket, once
    assert sum(1 for r in store.requests if r == ("PUT", "http://s3.test/store/releases")) == 1


def test_session_token_is_signed(rsps):
    store = FakeS3(rsps)
    client("tok").create_bucket("b")
    assert store.buckets == {"b": {}}


def test_credentials_need_all_static_options_or_a_csm_site(monkeypatch):
    for var in ("VCLUSTER_S3_URL", "VCLUSTER_S3_ACCESS_KEY", "VCLUSTER_S3_SECRET_KEY", "S3_ACCESS", "S3_SECRET"):
        monkeypatch.delenv(var, raising=False)

    class Clients:
        site = Site.from_options({"site_kind": "openchami", "api_url": "http://api.test"})

    with pytest.raises(SiteError) as err:
        site_s3_credentials(Clients, {"s3_access_key": "ak"})
    assert "s3_url, s3_access_key and s3_secret_key together" in str(err.value)
    with pytest.raises(SiteError) as err:
        site_s3_credentials(Clients, {})
    assert "MinIO" in str(err.value)
    monkeypatch.setenv("S3_ACCESS", "ak")
    monkeypatch.setenv("S3_SECRET", "sk")
    monkeypatch.setenv("VCLUSTER_S3_URL", "http://s3.test")
    creds = site_s3_credentials(Clients, {})
    assert (creds.endpoint, creds.access_key, creds.secret_key) == ("http://s3.test", "ak", "sk")
