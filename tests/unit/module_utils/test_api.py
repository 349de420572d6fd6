"""The transport: retries, backoff, one refresh on 401, readable errors, no secrets in messages."""
import json

import pytest
import requests
import responses

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, Transport, problem_detail
from ansible_collections.hpc.vcluster.plugins.module_utils._auth import ClientCredentials, StaticToken, FileToken, build_token_source, jwt_claims
from ansible_collections.hpc.vcluster.plugins.module_utils._site import Site, SiteError, token_env_name

URL = "https://site.example"


def make(token_source=None, retries=3):
    sleeps = []
    t = Transport(Site("openchami", URL), token_source, retries=retries, sleep=sleeps.append)
    return t, sleeps


@responses.activate
def test_retries_503_with_backoff_then_succeeds():
    responses.get(URL + "/hsm/v2/groups", status=503, body="busy")
    responses.get(URL + "/hsm/v2/groups", status=503, body="busy")
    responses.get(URL + "/hsm/v2/groups", json=[])
    t, sleeps = make()
    assert t.get_json(URL + "/hsm/v2/groups", "smd") == []
    assert len(responses.calls) == 3
    assert len(sleeps) == 2 and 0 < sleeps[0] <= 0.5 and sleeps[1] <= 1.0


@responses.activate
def test_retry_after_header_is_respected():
    responses.get(URL + "/x", status=429, headers={"Retry-After": "2"})
    responses.get(URL + "/x", json={})
    t, sleeps = make()
    t.request("GET", URL + "/x")
    assert sleeps == [2.0]


@responses.activate
def test_gives_up_after_retries_with_readable_problem():
    problem = {"type": "about:blank", "title": "Service Unavailable", "detail": "database down", "status": 503}
    for dummy in range(4):
        responses.get(URL + "/hsm/v2/groups", status=503, json=problem, content_type="application/problem+json")
    t, dummy = make(retries=3)
    with pytest.raises(ApiError) as err:
        t.request("GET", URL + "/hsm/v2/groups", service="smd")
    assert str(err.value) == "SMD GET /hsm/v2/groups: 503 Service Unavailable: Service Unavailable: database down"
    assert err.value.status == 503
    assert len(responses.calls) == 4


@responses.activate
def test_500_on_post_is_not_retried_but_on_put_is():
    responses.post(URL + "/a", status=500, json={"title": "Internal Server Error", "detail": "boom", "status": 500})
    responses.put(URL + "/b", status=500)
    responses.put(URL + "/b", status=200)
    t, dummy = make()
    with pytest.raises(ApiError):
        t.request("POST", URL + "/a")
    assert len(responses.calls) == 1
    t.request("PUT", URL + "/b")
    assert len(responses.calls) == 3


@responses.activate
def test_rfc7807_conflict_message():
    responses.post(URL + "/hsm/v2/groups", status=409, content_type="application/problem+json", json={
        "type": "about:blank", "title": "Conflict", "status": 409,
        "detail": "operation would conflict with an existing member in another exclusive group."})
    t, dummy = make()
    with pytest.raises(ApiError) as err:
        t.request("POST", URL + "/hsm/v2/groups", service="smd", json_body={"label": "a"})
    assert "409 Conflict: Conflict: operation would conflict with an existing member in another exclusive group." in str(err.value)


class CountingSource(StaticToken):
    def __init__(self):
        super().__init__("old", "test")
        self.refreshes = 0

    def can_refresh(self):
        return True

    def refresh(self):
        self.refreshes += 1
        self.value = "new"
        return self.value


@responses.activate
def test_one_refresh_on_401():
    responses.get(URL + "/x", status=401, body="Unauthorized", match=[responses.matchers.header_matcher({"Authorization": "Bearer old"})])
    responses.get(URL + "/x", json={"ok": 1}, match=[responses.matchers.header_matcher({"Authorization": "Bearer new"})])
    src = CountingSource()
    t, dummy = make(src)
    assert t.get_json(URL + "/x") == {"ok": 1}
    assert src.refreshes == 1


@responses.activate
def test_second_401_fails_without_looping_and_hides_token():
    responses.get(URL + "/x", status=401, body="no token found")
    src = CountingSource()
    t, dummy = make(src)
    with pytest.raises(ApiError) as err:
        t.request("GET", URL + "/x", service="smd")
    assert src.refreshes == 1
    assert len(responses.calls) == 2
    assert "401" in str(err.value) and "no token found" in str(err.value)
    assert "new" not in str(err.value) and "Bearer" not in str(err.value)


@responses.activate
def test_client_credentials_post_and_basic():
    body = {"access_token": "abc", "expires_in": 300, "token_type": "bearer"}
    responses.post(URL + "/token", json=body, match=[responses.matchers.urlencoded_params_matcher(
        {"grant_type": "client_credentials", "client_id": "admin-client", "client_secret": "s3cr3t"})])
    cc = ClientCredentials(URL + "/token", "admin-client", "s3cr3t", auth_method="post")
    assert cc.get() == "abc" and cc.get() == "abc"
    assert cc.fetch_count == 1
    assert cc.refresh() == "abc" and cc.fetch_count == 2


@responses.activate
def test_client_credentials_failure_is_readable_and_secret_free():
    responses.post(URL + "/token", status=401, json={"error": "unauthorized_client", "error_description": "Invalid client secret"})
    cc = ClientCredentials(URL + "/token", "admin-client", "s3cr3t", auth_method="basic")
    with pytest.raises(ApiError) as err:
        cc.get()
    assert "unauthorized_client: Invalid client secret" in str(err.value)
    assert "s3cr3t" not in str(err.value)


def test_expired_static_token_is_reported():
    import base64
    import time
    payload = base64.urlsafe_b64encode(json.dumps({"exp": int(time.time()) - 60}).encode()).decode().rstrip("=")
    tok = "e30." + payload + ".sig"
    assert jwt_claims(tok)["exp"] < time.time()
    with pytest.raises(ApiError, match="LAB_ACCESS_TOKEN expired"):
        StaticToken(tok, "LAB_ACCESS_TOKEN").get()


def test_token_source_order(tmp_path):
    site = Site("openchami", URL, name="my-site")
    f = tmp_path / "tok"
    f.write_text("from-file\n")
    assert token_env_name("my-site") == "MY_SITE_ACCESS_TOKEN"
    assert build_token_source(site, {"token": "a", "token_file": str(f)}, {}).get() == "a"
    assert build_token_source(site, {"token_file": str(f)}, {"MY_SITE_ACCESS_TOKEN": "b"}).get() == "from-file"
    assert build_token_source(site, {}, {"MY_SITE_ACCESS_TOKEN": "b"}).get() == "b"
    cc = build_token_source(site, {"client_id": "c", "client_secret": "d"}, {})
    assert isinstance(cc, ClientCredentials) and cc.auth_method == "basic" and cc.token_url == URL + "/oauth2/token"
    assert build_token_source(site, {}, {}) is None
    with pytest.raises(ApiError, match="both client_id and client_secret"):
        build_token_source(site, {"client_id": "c"}, {})


def test_file_token_rereads_on_refresh(tmp_path):
    f = tmp_path / "tok"
    f.write_text("one")
    src = FileToken(str(f))
    assert src.get() == "one"
    f.write_text("two")
    assert src.get() == "one" and src.refresh() == "two"


def test_site_urls_and_errors(tmp_path):
    s = Site("csm", "https://api-gw/", service_urls={"pcs": "https://pcs.local:28007/", "smd": "/smd/hsm/v2"})
    assert s.service_url("bos") == "https://api-gw/apis/bos/v2"
    assert s.service_url("pcs") == "https://pcs.local:28007"
    assert s.service_url("smd") == "https://api-gw/smd/hsm/v2"
    assert s.token_url == "https://api-gw/keycloak/realms/shasta/protocol/openid-connect/token"
    with pytest.raises(SiteError, match="no bos service"):
        Site("openchami", URL).service_url("bos")
    with pytest.raises(SiteError, match="site_kind must be one of"):
        Site("warewulf", URL)
    with pytest.raises(SiteError, match="api_url is required"):
        Site("csm", None)
    with pytest.raises(SiteError, match="ca_path"):
        Site("csm", URL, ca_path=str(tmp_path / "nope.pem"))
    with pytest.raises(SiteError, match="unknown services foo"):
        Site("csm", URL, service_urls={"foo": "/x"})
    assert Site.from_options({"site_kind": "csm", "api_url": URL, "validate_certs": "no", "timeout": "5"}).verify is False


def test_problem_detail_shapes():
    def resp(body, ctype="application/json"):
        r = requests.Response()
        r.status_code = 400
        r._content = body.encode()
        r.headers["Content-Type"] = ctype
        return r
    assert problem_detail(resp('{"message":"vlan exists","statusCode":409,"errorCode":0}')) == "vlan exists"
    assert problem_detail(resp("group 'x' not added as it already exists\n", "text/plain")) == "group 'x' not added as it already exists"
    assert problem_detail(resp('{"type":"about:blank","title":"Not Found","detail":"No such group: foo","status":404}')) == "Not Found: No such group: foo"


@responses.activate
def test_connection_refused_is_readable():
    t, sleeps = make(retries=2)
    responses.get(URL + "/x", body=requests.exceptions.ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused"))
    with pytest.raises(ApiError, match=r"cannot reach https://site.example"):
        t.request("GET", URL + "/x")
    assert len(sleeps) == 2


@responses.activate
def test_ca_path_wins_over_requests_ca_bundle(monkeypatch, tmp_path):
    """requests lets REQUESTS_CA_BUNDLE replace a session's verify; the site's CA must win on every call."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a CA, never opened by responses")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    responses.get(URL + "/x", json={})
    t = Transport(Site("openchami", URL, ca_path=str(ca)), None, sleep=lambda s: None)
    t.request("GET", URL + "/x")
    assert responses.calls[0].request.req_kwargs["verify"] == str(ca)


def test_token_with_a_line_break_is_refused_without_echoing_it():
    with pytest.raises(ApiError) as err:
        StaticToken("abc.def\nghi.jkl", "VCLUSTER_TOKEN")
    assert "VCLUSTER_TOKEN holds white space or a line break" in str(err.value)
    assert "ghi" not in str(err.value)


def test_empty_environment_variables_count_as_unset(monkeypatch):
    from ansible.module_utils.errors import AnsibleFallbackNotFound
    from ansible_collections.hpc.vcluster.plugins.module_utils._site import nonempty_env_fallback
    monkeypatch.setenv("VCLUSTER_VALIDATE_CERTS", "")
    with pytest.raises(AnsibleFallbackNotFound):
        nonempty_env_fallback("VCLUSTER_VALIDATE_CERTS")
    monkeypatch.setenv("VCLUSTER_VALIDATE_CERTS", "no")
    assert nonempty_env_fallback("VCLUSTER_VALIDATE_CERTS") == "no"
