"""SMD, BSS and cloud-init replies against their Swagger 2.0 files (both faces).

Every reply is checked against the schema the spec documents for that path, method and
status, patched only by the documented differences in contract.EXCEPTIONS.
"""
from __future__ import annotations

import pytest
import yaml

from conftest import BSS_PREFIX, SMD_PREFIX, make_nodes
from contract import EXCEPTIONS, Swagger2, apply, load, swagger2

SMD_SPEC = {"openchami": "openchami/smd-swagger_v2.yaml", "csm": "csm/hms-smd_swagger_v2.yaml"}
BSS_SPEC = {"openchami": "openchami/bss-swagger.yaml", "csm": "csm/hms-bss_swagger.yaml"}


@pytest.fixture(scope="module")
def site(lab):
    make_nodes(lab, 4, 1)
    return lab


@pytest.fixture(scope="module", params=["openchami", "csm"])
def face(request):
    return request.param


def check(spec: Swagger2, path: str, resp, status: int | None = None) -> None:
    assert status is None or resp.status_code == status, resp.text
    body = resp.json() if resp.content and "json" in resp.headers.get("Content-Type", "") else None
    spec.validate(path, resp.request.method, resp.status_code, body)


def test_every_exception_still_applies():
    """Each patch names a real difference of the spec as copied (apply asserts it)."""
    for spec in sorted({e.spec for e in EXCEPTIONS}):
        apply(spec, load(spec))


def test_smd_replies(site, face):
    spec = swagger2(SMD_SPEC[face])
    s = site.session(face if face == "openchami" else "csm")
    p = SMD_PREFIX[face]
    label = f"contract-{face}"
    check(spec, "/service/ready", s.get(p + "/service/ready"), 200)
    check(spec, "/service/values", s.get(p + "/service/values"), 200)
    check(spec, "/State/Components", s.get(p + "/State/Components"), 200)
    check(spec, "/State/Components", s.get(p + "/State/Components?type=Bogus"), 400)
    check(spec, "/State/Components/{xname}", s.get(p + "/State/Components/x1000c0s0b0n0"), 200)
    check(spec, "/State/Components/{xname}", s.get(p + "/State/Components/x1000c9s0b0n0"), 404)
    check(spec, "/groups", s.post(p + "/groups", json={"label": label, "tags": ["Contract"],
                                                       "members": {"ids": ["x1000c0s0b0n0"]}}), 201)
    check(spec, "/groups", s.post(p + "/groups", json={"label": label}), 409)
    check(spec, "/groups", s.get(p + "/groups"), 200)
    check(spec, "/groups/{group_label}", s.get(p + f"/groups/{label}"), 200)
    check(spec, "/groups/{group_label}/members", s.post(p + f"/groups/{label}/members", json={"id": "x1000c0s1b0n0"}),
          201)
    check(spec, "/groups/{group_label}/members", s.get(p + f"/groups/{label}/members"), 200)
    check(spec, "/groups/{group_label}/members/{xname_id}",
          s.delete(p + f"/groups/{label}/members/x1000c0s1b0n0"), 200)
    check(spec, "/groups/labels", s.get(p + "/groups/labels"), 200)
    check(spec, "/memberships", s.get(p + "/memberships"), 200)
    check(spec, "/memberships/{xname}", s.get(p + "/memberships/x1000c0s0b0n0"), 200)
    check(spec, "/groups/{group_label}", s.delete(p + f"/groups/{label}"), 200)
    check(spec, "/groups/{group_label}", s.delete(p + f"/groups/{label}"), 404)
    part = "p7" if face == "openchami" else "p8"
    check(spec, "/partitions", s.post(p + "/partitions", json={"name": part, "members": {"ids": ["x1000c0s3b0n0"]}}),
          201)
    check(spec, "/partitions", s.get(p + "/partitions"), 200)
    check(spec, "/partitions/{partition_name}", s.get(p + f"/partitions/{part}"), 200)
    check(spec, "/partitions/{partition_name}", s.delete(p + f"/partitions/{part}"), 200)
    check(spec, "/Inventory/EthernetInterfaces", s.get(p + "/Inventory/EthernetInterfaces"), 200)
    mac = "9a:99:99:99:99:90" if face == "openchami" else "9a:99:99:99:99:91"
    check(spec, "/Inventory/EthernetInterfaces",
          s.post(p + "/Inventory/EthernetInterfaces",
                 json={"MACAddress": mac, "ComponentID": "x1000c0s2b0n0",
                       "IPAddresses": [{"IPAddress": "10.9.9.9", "Network": "HSN"}]}), 201)
    eid = mac.replace(":", "")
    check(spec, "/Inventory/EthernetInterfaces/{ethInterfaceID}",
          s.get(p + f"/Inventory/EthernetInterfaces/{eid}"), 200)
    check(spec, "/Inventory/EthernetInterfaces/{ethInterfaceID}",
          s.delete(p + f"/Inventory/EthernetInterfaces/{eid}"), 200)


def test_bss_replies(site, face):
    spec = swagger2(BSS_SPEC[face])
    s = site.session(face if face == "openchami" else "csm")
    p = BSS_PREFIX[face]
    host = "x1000c0s0b0n0" if face == "openchami" else "x1000c0s1b0n0"
    check(spec, "/boot/v1/bootparameters",
          s.put(p + "/bootparameters", json={"hosts": [host], "kernel": "s3://boot-images/k", "initrd": "s3://i",
                                             "params": "console=ttyS0"}), 200)
    check(spec, "/boot/v1/bootparameters", s.get(p + "/bootparameters"), 200)
    check(spec, "/boot/v1/bootparameters", s.get(p + f"/bootparameters?name={host}"), 200)
    check(spec, "/boot/v1/bootparameters", s.get(p + "/bootparameters?name=x9999c0s0b0n0"), 404)
    check(spec, "/boot/v1/bootparameters", s.post(p + "/bootparameters", json={"hosts": ["nid000001"]}), 400)
    check(spec, "/boot/v1/service/status", s.get(p + "/service/status"), 200)
    resp = s.get(p + f"/bootscript?name={host}")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    spec.validate("/boot/v1/bootscript", "GET", 200, resp.text)


def test_cloud_init_replies(site):
    spec = swagger2("openchami/cloud-init-swagger.yaml")
    s = site.session("openchami", token=False)
    group = {"name": "contract", "description": "contract group", "meta-data": {"syslog": "10.0.0.1"},
             "file": {"content": "#cloud-config\nruncmd: [true]\n", "encoding": "plain"}}
    check(spec, "/admin/groups", s.post("/cloud-init/admin/groups", json=group), 201)
    check(spec, "/admin/groups", s.get("/cloud-init/admin/groups"), 200)
    resp = s.get("/cloud-init/admin/groups/contract")
    assert resp.status_code == 200
    spec.validate("/admin/groups/{id}", "GET", 200, resp.json())
    check(spec, "/admin/cluster-defaults", s.get("/cloud-init/admin/cluster-defaults"), 200)
    smd = site.session("openchami")
    assert smd.post("/hsm/v2/groups", json={"label": "contract", "members": {"ids": ["x1000c0s2b0n0"]}}).status_code == 201
    resp = s.get("/cloud-init/admin/impersonation/x1000c0s2b0n0/meta-data")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/x-yaml"
    spec.validate("/admin/impersonation/{id}/meta-data", "GET", 200, yaml.safe_load(resp.text))
