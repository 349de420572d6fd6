"""hpc.vcluster.csm against recorded CSM HSM and Keycloak replies (fixtures/csm_*.json, keycloak_token.json)."""
import urllib.parse

import pytest
import responses
from ansible.errors import AnsibleParserError

from inventory_harness import CSM_SMD, CSM_URL, KEYCLOAK, fixture, register_csm

SECRET = "admin-client-secret-s3cr3t"
BASE = {"plugin": "hpc.vcluster.csm", "api_url": CSM_URL, "client_id": "admin-client", "client_secret": SECRET}


@responses.activate
def test_keycloak_client_credentials_then_three_hsm_calls(parse):
    register_csm()
    run = parse(BASE, plugin="hpc.vcluster.csm")
    assert [c.request.method + " " + urllib.parse.urlsplit(c.request.url).path for c in responses.calls] == [
        "POST /keycloak/realms/shasta/protocol/openid-connect/token",
        "GET /apis/smd/hsm/v2/State/Components", "GET /apis/smd/hsm/v2/memberships",
        "GET /apis/smd/hsm/v2/Inventory/EthernetInterfaces"]
    form = urllib.parse.parse_qs(responses.calls[0].request.body)
    assert form == {"grant_type": ["client_credentials"], "client_id": ["admin-client"], "client_secret": [SECRET]}
    token = fixture("keycloak_token.json")["access_token"]
    assert all(c.request.headers["Authorization"] == "Bearer " + token for c in responses.calls[1:])
    assert any("4 HTTP requests" in v for v in run.display.verbose)
    assert not any(SECRET in line or token in line for line in run.display.verbose + run.display.warnings)


@responses.activate
def test_cfs_group_names_and_hosts(parse):
    register_csm()
    run = parse(BASE, plugin="hpc.vcluster.csm")
    # Descriptions are "- kea" or "": no host names, so NIDs; the interface without ComponentID is ignored.
    assert sorted(run.hosts) == ["nid001000", "nid001001", "nid001002", "nid100001", "nid100002", "nid49169248"]
    # the names CSM's CFS inventory gives (Role, Role_SubRole, label, partition), plus arch and site
    assert run.group_names() == {"Management", "Management_Master", "Management_Worker", "Application", "Application_UAN",
                                 "Compute", "iscsi_worker", "uan", "alps", "vc_eiger", "vc_daint", "p1", "p2",
                                 "arch_X86", "arch_ARM", "site_csm"}
    assert run.members("vc_eiger") == ["nid001000", "nid001001"]       # CFS would drop vc-eiger; we convert it
    assert any("label 'vc-eiger' -> vc_eiger" in w for w in run.display.warnings)
    ncn = run.hostvars("nid100001")
    assert ncn["ansible_host"] == "10.252.1.7" and ncn["smd_mac"] == "b4:2e:99:be:1a:2b"   # NMN, not HMN
    assert ncn["smd_role"] == "Management" and ncn["smd_subrole"] == "Master" and ncn["smd_hostname"] is None
    no_ip = run.hostvars("nid001002")
    assert "ansible_host" not in no_ip and no_ip["smd_mac"] == "00:40:a6:83:00:03" and no_ip["smd_flag"] == "Warning"
    assert run.inventory.groups["site_csm"].get_vars()["vcluster_site_kind"] == "csm"


@responses.activate
def test_expired_token_is_refreshed_once_on_401(parse):
    responses.post(KEYCLOAK, json=dict(fixture("keycloak_token.json"), access_token="first"))
    responses.post(KEYCLOAK, json=dict(fixture("keycloak_token.json"), access_token="second"))

    def components(request):
        if request.headers["Authorization"] == "Bearer first":
            return (401, {"Content-Type": "application/problem+json"},
                    '{"type":"about:blank","title":"Unauthorized","detail":"token expired","status":401}')
        return (200, {"Content-Type": "application/json"}, '{"Components": []}')
    responses.add_callback(responses.GET, CSM_SMD + "/State/Components", callback=components)
    responses.get(CSM_SMD + "/memberships", json=[])
    responses.get(CSM_SMD + "/Inventory/EthernetInterfaces", json=[])
    run = parse(BASE, plugin="hpc.vcluster.csm")
    assert [c.request.headers.get("Authorization") for c in responses.calls] == [
        None, "Bearer first", None, "Bearer second", "Bearer second", "Bearer second"]
    assert len(run.hosts) == 0 and any("6 HTTP requests" in v for v in run.display.verbose)


@responses.activate
def test_bad_client_secret_names_site_and_fix_without_the_secret(parse):
    responses.post(KEYCLOAK, status=401,
                   json={"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"})
    with pytest.raises(AnsibleParserError) as err:
        parse(dict(BASE, site_name="alps"), plugin="hpc.vcluster.csm")
    message = str(err.value)
    assert message.startswith("hpc.vcluster.csm: site 'alps' (%s): TOKEN POST %s: 401" % (CSM_URL, KEYCLOAK))
    assert "Invalid client credentials" in message and "check client_id and client_secret" in message
    assert SECRET not in message


@responses.activate
def test_csm_paths_follow_service_url_overrides(parse):
    register_csm(url="https://hsm.internal:8443/hsm/v2")
    run = parse(dict(BASE, service_urls={"smd": "https://hsm.internal:8443/hsm/v2"}), plugin="hpc.vcluster.csm")
    assert urllib.parse.urlsplit(responses.calls[1].request.url).netloc == "hsm.internal:8443"
    assert len(run.hosts) == 6


@responses.activate
def test_partition_filter_goes_to_both_calls(parse):
    register_csm()
    parse(dict(BASE, filters={"partition": "p1", "role": "Compute"}), plugin="hpc.vcluster.csm")
    for call in responses.calls[1:3]:
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(call.request.url).query) == {
            "partition": ["p1"], "role": ["Compute"], "type": ["Node"]}
