"""The lab's S3 store and CSM's STS, exercised with the collection's own S3 client over real HTTPS.

Proves: the static key pair (credentials.json, what `vcluster-lab env --face openchami` exports)
and STS credentials (a CSM site token traded at PUT /apis/sts/token) both sign requests the
store accepts; a wrong secret, a wrong session token, a tampered body and no signature are
refused with S3's error codes; objects are written, read, listed in pages and deleted; the
store survives a restart.
"""
from __future__ import annotations

import hashlib

import requests

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, Transport
from ansible_collections.hpc.vcluster.plugins.module_utils._s3 import S3Client, S3Credentials
from ansible_collections.hpc.vcluster.plugins.module_utils._site import Site


def s3_client(server, access, secret, token=None, endpoint=None):
    site = Site.from_options({"site_kind": "openchami", "api_url": server.url, "ca_path": server.verify})
    return S3Client(Transport(site, None, retries=0), S3Credentials(endpoint or server.url + "/s3", access, secret, token))


def static_keys(server):
    s3 = server.credentials["s3"]
    return s3["access_key"], s3["secret_key"]


def test_static_keys_write_list_read_delete_and_survive_a_restart(lab_server):
    server = lab_server()
    s3 = s3_client(server, *static_keys(server))
    assert s3.keys("vcluster-releases", "demo/") == []
    for i in range(1, 4):
        assert s3.put("vcluster-releases", "demo/%06d.json" % i, b'{"seq": %d}' % i) == \
            hashlib.md5(b'{"seq": %d}' % i).hexdigest()
    s3.put("vcluster-releases", "other/000001.json", b"{}")
    s3.LIST_PAGE = 2
    assert s3.keys("vcluster-releases", "demo/") == ["demo/000001.json", "demo/000002.json", "demo/000003.json"]
    assert s3.create_bucket("vcluster-releases") is False
    server.restart()
    s3 = s3_client(server, *static_keys(server))  # the restarted server listens on a new port
    assert s3.get("vcluster-releases", "demo/000002.json") == b'{"seq": 2}'
    s3.delete("vcluster-releases", "demo/000002.json")
    assert s3.get("vcluster-releases", "demo/000002.json") is None
    assert s3.get("no-such-bucket", "x") is None


def test_bad_signatures_are_refused(lab_server):
    server = lab_server()
    access, secret = static_keys(server)
    try:
        s3_client(server, access, secret + "x").keys("bkt")
        raise AssertionError("a wrong secret was accepted")
    except ApiError as exc:
        assert exc.status == 403 and "SignatureDoesNotMatch" in str(exc.detail)
    try:
        s3_client(server, "NOSUCHKEY", secret).keys("bkt")
        raise AssertionError("an unknown key was accepted")
    except ApiError as exc:
        assert "InvalidAccessKeyId" in str(exc.detail)
    reply = requests.get(server.url + "/s3/bkt?list-type=2", verify=server.verify, timeout=30)
    assert reply.status_code == 403 and b"<Code>AccessDenied</Code>" in reply.content
    # a body that is not the one signed
    s3 = s3_client(server, access, secret)
    s3.create_bucket("bkt")
    real = s3.transport.request

    def tamper(method, url, **kw):
        if kw.get("data"):
            kw["data"] = kw["data"] + b" "
        return real(method, url, **kw)

    s3.transport.request = tamper
    try:
        s3.put("bkt", "k", b"{}")
        raise AssertionError("a tampered body was accepted")
    except ApiError as exc:
        assert exc.status == 400 and "XAmzContentSHA256Mismatch" in str(exc.detail)


def test_sts_trades_a_csm_token_for_working_credentials(lab_server):
    server = lab_server()
    assert requests.put(server.url + "/apis/sts/token", verify=server.verify, timeout=30).status_code == 403
    reply = requests.put(server.url + "/apis/sts/token", verify=server.verify, timeout=30,
                         headers={"Authorization": "Bearer " + server.token("csm")})
    reply.raise_for_status()
    creds = reply.json()["Credentials"]
    assert creds["EndpointURL"] == server.url + "/s3"
    s3 = s3_client(server, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"],
                   endpoint=creds["EndpointURL"])
    s3.put("vcluster-releases", "a/000001.json", b"{}")
    assert s3.keys("vcluster-releases") == ["a/000001.json"]
    try:
        s3_client(server, creds["AccessKeyId"], creds["SecretAccessKey"], "forged").keys("vcluster-releases")
        raise AssertionError("a forged session token was accepted")
    except ApiError as exc:
        assert "InvalidToken" in str(exc.detail)
