"""cloud-init, BOS, IMS, fabric manager, UFM and registry clients against recorded replies."""
import base64
import json

import pytest
import responses

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError
from ansible_collections.hpc.vcluster.plugins.module_utils._bos import BosClient, comparable_template
from ansible_collections.hpc.vcluster.plugins.module_utils._cloud_init import CloudInitClient, group_content
from ansible_collections.hpc.vcluster.plugins.module_utils._fabric import FabricClient, port_node
from ansible_collections.hpc.vcluster.plugins.module_utils._ims import ImsClient
from ansible_collections.hpc.vcluster.plugins.module_utils._registry import RegistryClient
from ansible_collections.hpc.vcluster.plugins.module_utils._ufm import UfmClient, normalize_guid, normalize_pkey

from l1_helpers import URL, transport


@responses.activate
def test_cloud_init_plain_text_404_is_none_and_errors_readable():
    responses.get(URL + "/cloud-init/admin/groups/x", status=404, body="group (x) not found in memstore")
    responses.put(URL + "/cloud-init/admin/groups/y", status=422, body="name is required")
    t = transport()[0]
    ci = CloudInitClient(t, URL + "/cloud-init")
    assert ci.group("x") is None
    with pytest.raises(ApiError) as err:
        ci.put_group("y", {})
    assert "422" in str(err.value) and "name is required" in str(err.value)
    content = base64.b64encode(b"#cloud-config\n").decode()
    assert group_content({"file": {"content": content, "encoding": "base64"}}) == "#cloud-config\n"


@responses.activate
def test_bos_tenant_header_and_comparable_template():
    stored = {"name": "t", "tenant": "blue", "links": [], "boot_sets": {"c": {"name": "c", "path": "p"}}}
    responses.get(URL + "/apis/bos/v2/sessiontemplates/t", json=stored)
    t = transport("csm")[0]
    bos = BosClient(t, URL + "/apis/bos/v2", tenant="blue")
    template = bos.template("t")
    assert responses.calls[0].request.headers["Cray-Tenant-Name"] == "blue"
    assert comparable_template(template) == {"boot_sets": {"c": {"path": "p"}}}
    with pytest.raises(ValueError):
        bos.create_session("t", "explode")


@responses.activate
def test_ims_metadata_is_patched_one_key_per_call():
    url = URL + "/apis/ims/v3/images/i1"
    responses.patch(url, json={})
    responses.patch(url, json={})
    t = transport("csm")[0]
    ImsClient(t, URL + "/apis/ims/v3").set_metadata("i1", {"b": 2, "a": "x"})
    bodies = [json.loads(c.request.body) for c in responses.calls]
    assert bodies == [{"metadata": {"operation": "set", "key": "a", "value": "x"}},
                      {"metadata": {"operation": "set", "key": "b", "value": "2"}}]


@responses.activate
def test_fabric_ports_expanded_or_one_by_one():
    fm = URL + "/apis/fabric-manager/fabric"
    responses.get(fm + "/ports", json={"documentLinks": ["/fabric/ports/p0", "/fabric/ports/p1"]})
    responses.get(fm + "/ports/p0", json={"dst_port": "x1000c0s0b0n0h0", "portPolicyLinks": []})
    responses.get(fm + "/ports/p1", json={"dst_port": "x1000c0s1b0n0h0", "portPolicyLinks": ["/fabric/port-policies/a"]})
    t = transport()[0]
    ports = FabricClient(t, URL + "/apis/fabric-manager").edge_ports(["x1000c0s1b0n0"])
    assert list(ports) == ["x1000c0s1b0n0"] and ports["x1000c0s1b0n0"]["documentSelfLink"] == "/fabric/ports/p1"
    assert port_node({"dst_port": "x1h0"}) == "x1" and port_node({}) is None


@responses.activate
def test_fabric_xenon_error_is_readable():
    responses.post(URL + "/apis/fabric-manager/fabric/vlans", status=409,
                   json={"message": "Service already started: /fabric/vlans/5", "statusCode": 409})
    t = transport()[0]
    with pytest.raises(ApiError) as err:
        FabricClient(t, URL + "/apis/fabric-manager").create_vlan(5, "x")
    assert "409" in str(err.value) and "Service already started" in str(err.value)


@responses.activate
def test_ufm_uses_basic_auth_not_the_token_and_empty_means_missing():
    responses.get(URL + "/ufmRest/resources/pkeys/0xa12", json={})
    t = transport(token="site-token")[0]
    ufm = UfmClient(t, URL + "/ufmRest", "admin", "pw")
    assert ufm.pkey("0xa12") is None
    headers = responses.calls[0].request.headers
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"admin:pw").decode()
    assert "site-token" not in headers["Authorization"]
    assert normalize_pkey("0x0A12") == "0xa12" and normalize_guid("0x0C42A103DEADBEEF") == "0c42a103deadbeef"
    with pytest.raises(ValueError):
        normalize_pkey("0x7fff")
    with pytest.raises(ApiError):
        UfmClient(t, URL + "/ufmRest", None, None)


@responses.activate
def test_registry_labels_through_index_and_bearer_challenge():
    reg = "https://reg.example:5000/v2"
    responses.get(reg + "/_catalog", status=401,
                  headers={"WWW-Authenticate": 'Bearer realm="https://reg.example:5000/token",service="reg"'})
    responses.get("https://reg.example:5000/token", json={"token": "t0k"})
    responses.get(reg + "/_catalog", json={"repositories": ["demo/compute", "other/x"]})
    responses.get(reg + "/demo/compute/manifests/v1", headers={"Docker-Content-Digest": "sha256:idx"},
                  json={"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"digest": "sha256:m1"}]})
    responses.get(reg + "/demo/compute/manifests/sha256:m1", json={"config": {"digest": "sha256:cfg"}})
    responses.get(reg + "/demo/compute/blobs/sha256:cfg", json={"config": {"Labels": {"org.openchami.image.name": "compute"}}})
    client = RegistryClient("reg.example:5000/demo")
    assert client.repositories() == ["demo/compute"]
    assert responses.calls[2].request.headers["Authorization"] == "Bearer t0k"
    digest, config_digest, config = client.image("demo/compute", "v1")
    assert digest == "sha256:idx" and config_digest == "sha256:cfg"
    assert config["config"]["Labels"]["org.openchami.image.name"] == "compute"


@responses.activate
def test_site_ca_path_wins_over_requests_ca_bundle_in_the_environment(tmp_path, monkeypatch):
    from ansible_collections.hpc.vcluster.plugins.module_utils._api import Transport
    from ansible_collections.hpc.vcluster.plugins.module_utils._site import Site
    ca = tmp_path / "ca.pem"
    ca.write_text("not used by responses")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    responses.get(URL + "/x", json={})
    Transport(Site("openchami", URL, ca_path=str(ca))).request("GET", URL + "/x")
    assert responses.calls[0].request.req_kwargs["verify"] == str(ca)
