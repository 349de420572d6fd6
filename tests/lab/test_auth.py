"""Tokens of both faces and the auth split of every service, as the real ones answer."""
from __future__ import annotations

import subprocess
import time

import jwt


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_openchami_tokens(lab):
    c = lab.credentials["openchami"]
    basic = lab.request("POST", "/oauth2/token", auth=(c["client_id"], c["client_secret"]),
                        data={"grant_type": "client_credentials", "scope": "openid smd.read"})
    assert basic.status_code == 200 and basic.json()["token_type"] == "bearer"
    assert basic.json()["scope"] == "openid smd.read"
    form = lab.request("POST", "/oauth2/token", data={"grant_type": "client_credentials", "client_id": c["client_id"],
                                                      "client_secret": c["client_secret"]})
    assert form.status_code == 200
    cl = claims(form.json()["access_token"])
    assert {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "roles"} <= set(cl)
    assert cl["exp"] - cl["iat"] == form.json()["expires_in"] == 3600
    wrong = lab.request("POST", "/oauth2/token", auth=(c["client_id"], "nope"), data={"grant_type": "client_credentials"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert lab.request("POST", "/oauth2/token", data={"grant_type": "password"}).json()["error"] == \
        "unsupported_grant_type"
    opaal = lab.get("/token").json()
    jwks = lab.get("/.well-known/jwks.json").json()
    key = jwt.PyJWK(jwks["keys"][0])
    verified = jwt.decode(opaal["access_token"], key.key, algorithms=["RS256"], options={"verify_aud": False})
    assert verified["sub"] == c["client_id"] and jwks["keys"][0]["alg"] == "RS256"


def test_keycloak_tokens(lab):
    c = lab.credentials["csm"]
    url = "/keycloak/realms/shasta/protocol/openid-connect/token"
    svc = lab.request("POST", url, data={"grant_type": "client_credentials", "client_id": "admin-client",
                                         "client_secret": c["client_secret"]})
    assert svc.status_code == 200 and "refresh_token" not in svc.json()
    cl = claims(svc.json()["access_token"])
    assert cl["iss"].endswith("/keycloak/realms/shasta") and "shasta" in cl["aud"]
    assert cl["resource_access"]["shasta"]["roles"] == ["admin"]
    basic = lab.request("POST", url, auth=("admin-client", c["client_secret"]), data={"grant_type": "client_credentials"})
    assert basic.status_code == 200
    user = lab.credentials["users"]["alice"]
    pw = lab.request("POST", url, data={"grant_type": "password", "client_id": "shasta", "username": "alice",
                                        "password": user["password"]})
    assert pw.status_code == 200 and pw.json()["refresh_token"]
    ucl = claims(pw.json()["access_token"])
    assert "vc_blue" in ucl["realm_access"]["roles"] and ucl["preferred_username"] == "alice"
    assert "pa_admin" in claims(lab.token("csm", user="vcadmin"))["realm_access"]["roles"]
    bad = lab.request("POST", url, data={"grant_type": "password", "client_id": "shasta", "username": "alice",
                                         "password": "wrong"})
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_grant",
                                                     "error_description": "Invalid user credentials"}
    refreshed = lab.request("POST", url, data={"grant_type": "refresh_token", "client_id": "shasta",
                                               "refresh_token": pw.json()["refresh_token"]})
    assert refreshed.status_code == 200 and claims(refreshed.json()["access_token"])["preferred_username"] == "alice"
    certs = lab.get("/keycloak/realms/shasta/protocol/openid-connect/certs").json()
    assert certs["keys"][0]["kid"] != lab.get("/.well-known/jwks.json").json()["keys"][0]["kid"]


def test_lab_users_for_rbac(lab):
    made = lab.admin("PUT", "/users/carol", json={"roles": ["vc_green"], "password": "s3cret!"})
    assert made.status_code == 200 and made.json()["roles"] == ["vc_green"]
    assert "vc_green" in claims(lab.token("csm", user="carol"))["realm_access"]["roles"]
    listed = lab.admin("GET", "/users").json()["users"]
    assert {"username": "carol", "roles": ["vc_green"], "client_roles": ["admin"]} in listed
    assert all("password" not in u for u in listed)


def test_openchami_auth_split(lab):
    """SMD: collection GETs of Components and EthernetInterfaces are public; the rest 401 text/plain."""
    def anon(method, path):
        return lab.request(method, path)
    assert anon("GET", "/hsm/v2/State/Components").status_code == 200
    assert anon("GET", "/hsm/v2/Inventory/EthernetInterfaces").status_code == 200
    assert anon("GET", "/hsm/v2/service/ready").status_code == 200
    for method, path in [("GET", "/hsm/v2/groups"), ("GET", "/hsm/v2/memberships"),
                         ("GET", "/hsm/v2/State/Components/x1000c0s0b0n0"), ("POST", "/hsm/v2/groups"),
                         ("GET", "/boot/v1/bootparameters"), ("GET", "/power-control/v1/transitions"),
                         ("GET", "/v1/power-status")]:
        r = anon(method, path)
        assert r.status_code == 401, path
        assert r.headers["Content-Type"].startswith("text/plain") and r.text == "no token found\n", path
    assert anon("GET", "/boot/v1/bootscript?name=x1000c0s0b0n0").status_code == 200
    assert anon("GET", "/cloud-init/admin/groups").status_code == 200  # cloud-init has no auth
    assert anon("GET", "/power-control/v1/liveness").status_code == 204
    garbage = lab.request("GET", "/hsm/v2/groups", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401 and garbage.headers["Content-Type"].startswith("text/plain")
    # a CSM (Keycloak) token is signed by another key: OpenCHAMI services refuse it
    kc = lab.request("GET", "/hsm/v2/groups", headers={"Authorization": f"Bearer {lab.token('csm')}"})
    assert kc.status_code == 401


def test_csm_gateway(lab):
    paths = ["/apis/smd/hsm/v2/State/Components", "/apis/bss/boot/v1/bootscript?name=x1",
             "/apis/power-control/v1/power-status", "/apis/bos/v2/sessiontemplates", "/apis/ims/v3/images",
             "/apis/fabric-manager/fabric/vlans"]
    for path in paths:
        none = lab.get(path)
        assert none.status_code == 403 and none.text == "Unauthorized Request", path  # cray-opa default deny
    token = lab.token("csm")
    for path in paths:
        assert lab.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200, path
    oc = lab.get("/apis/smd/hsm/v2/State/Components", headers={"Authorization": f"Bearer {lab.token()}"})
    assert oc.status_code == 401 and oc.text == "Jwt verification fails"
    # a user without a client role the gateway knows is refused by OPA
    lab.admin("PUT", "/users/nobody", json={"roles": [], "client_roles": [], "password": "pw-nobody"})
    r = lab.get("/apis/smd/hsm/v2/State/Components", headers={"Authorization": f"Bearer {lab.token('csm', 'nobody')}"})
    assert r.status_code == 403
    lab.admin("PUT", "/users/wlmuser", json={"roles": [], "client_roles": ["wlm"], "password": "pw-wlm"})
    wlm = {"Authorization": f"Bearer {lab.token('csm', 'wlmuser')}"}
    assert lab.get("/apis/smd/hsm/v2/State/Components", headers=wlm).status_code == 200
    assert lab.request("POST", "/apis/smd/hsm/v2/groups", json={"label": "x"}, headers=wlm).status_code == 403


def test_ufm_basic_auth(lab):
    u = lab.credentials["ufm"]
    assert lab.get("/ufmRest/resources/pkeys").status_code == 401
    assert lab.get("/ufmRest/resources/pkeys", auth=(u["username"], "wrong")).status_code == 401
    assert lab.get("/ufmRest/resources/pkeys", auth=(u["username"], u["password"])).status_code == 200


def test_token_expiry_then_refresh(lab_server_factory):
    # 5 s, not 1: on a loaded machine more than a second can pass between issuing a token and its first use
    server = lab_server_factory(faults={"token_lifetime": 5})
    token, kc = server.token(), server.token("csm")
    assert claims(token)["exp"] - claims(token)["iat"] == 5
    h, hk = {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {kc}"}
    assert server.get("/hsm/v2/groups", headers=h).status_code == 200
    assert server.get("/apis/smd/hsm/v2/groups", headers=hk).status_code == 200
    time.sleep(6.1)
    expired = server.get("/hsm/v2/groups", headers=h)
    assert expired.status_code == 401 and expired.text == "token is expired\n"
    gw = server.get("/apis/smd/hsm/v2/groups", headers=hk)
    assert gw.status_code == 401 and gw.text == "Jwt is expired"
    assert server.get("/hsm/v2/groups", headers={"Authorization": f"Bearer {server.token()}"}).status_code == 200


def test_secrets_stay_out_of_the_log_and_files_are_private(lab):
    token = lab.token()
    lab.get("/hsm/v2/groups", headers={"Authorization": f"Bearer {token}"})
    lab.get("/token?client_secret=hunter2")
    log = (lab.home / "server.log").read_text()
    secret = lab.credentials["openchami"]["client_secret"]
    assert token not in log and secret not in log and "hunter2" not in log and "Bearer" not in log
    for name in ("credentials.json", "tls/server-key.pem", "tls/ca-key.pem", "jwt/openchami.pem", "jwt/keycloak.pem"):
        assert (lab.home / name).stat().st_mode & 0o777 == 0o600, name


def _non_loopback_address() -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True,
                         check=True).stdout
    addrs = [line.split()[3].split("/")[0] for line in out.splitlines()]
    assert addrs, "this machine has no non-loopback IPv4 address to test the admin guard with"
    return addrs[0]


def test_admin_api_is_loopback_only(lab_server_factory):
    """A client that is not on loopback (e.g. a podman node) gets the services but not /lab/v1."""
    server = lab_server_factory(host=_non_loopback_address())
    denied = server.get("/lab/v1/status")
    assert denied.status_code == 403 and "loopback" in denied.text
    assert server.request("POST", "/lab/v1/seed", json={"nodes": 1}).status_code == 403
    assert server.get("/hsm/v2/State/Components").status_code == 200
