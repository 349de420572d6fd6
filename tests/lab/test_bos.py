"""BOS v2 end to end on the records driver: templates, sessions that boot, status, components."""
from __future__ import annotations

import time

import pytest

from conftest import make_nodes


@pytest.fixture(scope="module")
def site(lab):
    make_nodes(lab, 4, 1)
    s = lab.session("csm")
    assert s.post("/apis/smd/hsm/v2/groups", json={"label": "vc_blue", "members": {
        "ids": ["x1000c0s0b0n0", "x1000c0s1b0n0", "x1000c0s2b0n0"]}}).status_code == 201
    image = s.post("/apis/ims/v3/images", json={"name": "blue-compute", "metadata": {
        "vclab.podman_ref": "localhost/blue-compute:1"}}).json()
    lab.image_id = image["id"]
    return lab


@pytest.fixture(scope="module")
def csm(site):
    return site.session("csm")


def template(image_id: str, **boot_set) -> dict:
    bs = {"path": f"s3://boot-images/{image_id}/manifest.json", "type": "s3", "etag": "abc",
          "kernel_parameters": "console=ttyS0,115200 ip=dhcp"}
    bs.update(boot_set)
    return {"description": "vCluster blue", "enable_cfs": False, "boot_sets": {"compute": bs}}


def run_session(csm, **body) -> dict:
    resp = csm.post("/apis/bos/v2/sessions", json=body)
    assert resp.status_code == 201, resp.text
    session = resp.json()
    assert session["status"]["status"] == "pending" and session["status"]["end_time"] is None
    deadline = time.monotonic() + 60
    while True:
        got = csm.get(f"/apis/bos/v2/sessions/{session['name']}").json()
        if got["status"]["status"] == "complete":
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.05)


def power(site) -> dict:
    return {n["xname"]: n["power"] for n in site.admin("GET", "/nodes").json()["nodes"]}


def test_template_put_rules(site, csm):
    body = template(site.image_id, node_groups=["vc_blue"], name="compute")
    body["name"] = "something-else"
    put = csm.put("/apis/bos/v2/sessiontemplates/vc-blue", json=body)
    assert put.status_code == 200  # 200, not 201
    stored = put.json()
    assert stored["name"] == "vc-blue"  # overwritten from the path
    assert "name" not in stored["boot_sets"]["compute"]  # boot set names are stripped
    extra = csm.put("/apis/bos/v2/sessiontemplates/bad", json=dict(template(site.image_id, node_list=["x1"]), x=1))
    assert extra.status_code == 400 and "Additional properties are not allowed ('x' was unexpected)" in extra.json()["detail"]
    nested = csm.put("/apis/bos/v2/sessiontemplates/bad", json=template(site.image_id, node_list=["x1"], colour="red"))
    assert nested.status_code == 400
    no_nodes = csm.put("/apis/bos/v2/sessiontemplates/bad", json=template(site.image_id))
    assert no_nodes.status_code == 400
    assert csm.get("/apis/bos/v2/sessiontemplates/bad").status_code == 404
    assert csm.get("/apis/bos/v2/sessiontemplatesvalid/vc-blue").json() == "Valid"


def test_boot_session_end_to_end(site, csm):
    s = run_session(csm, operation="boot", template_name="vc-blue", name="boot-blue", limit="vc_blue,!x1000c0s2b0n0")
    assert s["status"]["error"] is None and s["components"] == "x1000c0s0b0n0,x1000c0s1b0n0"
    # BSS now boots the IMS image's artifacts, the way BOS writes them
    params = csm.get("/apis/bss/boot/v1/bootparameters?name=x1000c0s0b0n0").json()[0]
    base = f"s3://boot-images/{site.image_id}"
    assert params["kernel"] == f"{base}/kernel" and params["initrd"] == f"{base}/initrd"
    assert params["params"].startswith("console=ttyS0,115200 ip=dhcp root=live:" + base + "/rootfs")
    assert "bos_session_id=boot-blue" in params["params"]
    # and the nodes are on, booted from the podman image the IMS record names
    nodes = {n["xname"]: n for n in site.admin("GET", "/nodes").json()["nodes"]}
    assert nodes["x1000c0s0b0n0"]["power"] == "on" and nodes["x1000c0s0b0n0"]["boot_image"] == "localhost/blue-compute:1"
    assert nodes["x1000c0s2b0n0"]["power"] == "off" and nodes["x1000c0s0b0n0"]["state"] == "Ready"
    status = csm.get("/apis/bos/v2/sessions/boot-blue/status").json()
    assert status["status"] == "complete" and status["percent_successful"] == 100.0
    assert status["percent_failed"] == 0.0 and status["managed_components_count"] == 0
    comp = csm.get("/apis/bos/v2/components/x1000c0s0b0n0").json()
    assert comp["session"] == "boot-blue" and comp["status"]["status"] == "stable"
    assert comp["actual_state"]["boot_artifacts"] == comp["desired_state"]["boot_artifacts"]
    assert comp["event_stats"]["power_on_attempts"] == 1
    # booting again changes nothing for nodes already running these artifacts
    again = run_session(csm, operation="boot", template_name="vc-blue", limit="x1000c0s0b0n0")
    assert csm.get("/apis/bos/v2/components/x1000c0s0b0n0").json()["event_stats"]["power_on_attempts"] == 1
    assert again["status"]["error"] is None


def test_reboot_and_shutdown(site, csm):
    run_session(csm, operation="reboot", template_name="vc-blue", limit="x1000c0s0b0n0,x1000c0s2b0n0")
    assert power(site)["x1000c0s2b0n0"] == "on"
    comp = csm.get("/apis/bos/v2/components/x1000c0s0b0n0").json()
    assert comp["event_stats"]["power_off_graceful_attempts"] == 1 and comp["event_stats"]["power_on_attempts"] == 2
    # & intersects: only members of vc_blue that are also listed
    s = run_session(csm, operation="shutdown", template_name="vc-blue", limit="x1000c0s2b0n0,x1000c0s3b0n0,&vc_blue")
    assert s["components"] == "x1000c0s2b0n0"
    assert power(site)["x1000c0s2b0n0"] == "off" and power(site)["x1000c0s0b0n0"] == "on"
    smd = csm.get("/apis/smd/hsm/v2/State/Components/x1000c0s2b0n0").json()
    assert smd["State"] == "Off"


def test_roles_arch_and_errors(site, csm):
    csm.put("/apis/bos/v2/sessiontemplates/svc", json=template(site.image_id, node_roles_groups=["Service"]))
    s = run_session(csm, operation="boot", template_name="svc")
    assert s["components"] == "x3000c0s0b0n0" and power(site)["x3000c0s0b0n0"] == "on"
    csm.put("/apis/bos/v2/sessiontemplates/arm", json=template(site.image_id, node_roles_groups=["Compute"], arch="ARM"))
    none = run_session(csm, operation="boot", template_name="arm")
    assert none["status"]["error"] == "No nodes were found to act upon."
    csm.put("/apis/bos/v2/sessiontemplates/ghost", json=template("00000000-0000-0000-0000-000000000000",
                                                                 node_list=["x1000c0s3b0n0"]))
    ghost = run_session(csm, operation="boot", template_name="ghost")
    assert "IMS image 00000000-0000-0000-0000-000000000000 does not exist" in ghost["status"]["error"]
    assert "does not exist" in csm.get("/apis/bos/v2/sessiontemplatesvalid/ghost").json()
    assert csm.post("/apis/bos/v2/sessions", json={"operation": "boot", "template_name": "nope"}).status_code == 400
    assert csm.post("/apis/bos/v2/sessions", json={"operation": "dance", "template_name": "svc"}).status_code == 400
    assert csm.post("/apis/bos/v2/sessions", json={"operation": "boot", "template_name": "svc", "x": 1}).status_code == 400
    dup = csm.post("/apis/bos/v2/sessions", json={"operation": "boot", "template_name": "svc", "name": "boot-blue"})
    assert dup.status_code == 409


def test_tenants_and_options(site, csm):
    tenant = {"Cray-Tenant-Name": "vcblue"}
    assert csm.put("/apis/bos/v2/sessiontemplates/tenant-tpl", headers=tenant,
                   json=template(site.image_id, node_list=["x1000c0s3b0n0"])).json()["tenant"] == "vcblue"
    assert csm.get("/apis/bos/v2/sessiontemplates/tenant-tpl").status_code == 404  # another tenant's
    assert csm.get("/apis/bos/v2/sessiontemplates/tenant-tpl", headers=tenant).status_code == 200
    assert [t["name"] for t in csm.get("/apis/bos/v2/sessiontemplates", headers=tenant).json()] == ["tenant-tpl"]
    assert csm.patch("/apis/bos/v2/options", json={"session_limit_required": True}).json()["session_limit_required"]
    need = csm.post("/apis/bos/v2/sessions", json={"operation": "boot", "template_name": "svc"})
    assert need.status_code == 400
    csm.patch("/apis/bos/v2/options", json={"session_limit_required": False})
    assert csm.delete("/apis/bos/v2/sessiontemplates/tenant-tpl", headers=tenant).status_code == 204
    listed = csm.get("/apis/bos/v2/sessions?status=complete").json()
    assert listed and all(x["status"]["status"] == "complete" for x in listed)
    assert csm.delete("/apis/bos/v2/sessions/boot-blue").status_code == 204
    assert csm.get("/apis/bos/v2/sessions/boot-blue").status_code == 404
