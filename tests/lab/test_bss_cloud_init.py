"""BSS boot parameters and boot script; the OpenCHAMI cloud-init server."""
from __future__ import annotations

import base64

import pytest
import yaml

from conftest import make_nodes

BP = "/boot/v1/bootparameters"


@pytest.fixture(scope="module")
def site(lab):
    nodes = make_nodes(lab, 4, 0)["nodes"]
    # start from nodes without boot parameters (POST /lab/v1/nodes gives them some)
    assert lab.session("openchami").delete(BP, json={"hosts": nodes}).status_code == 200
    return lab


@pytest.fixture(scope="module")
def oc(site):
    return site.session("openchami")


def test_bootparameters_semantics(oc, site):
    one = {"hosts": ["x1000c0s0b0n0"], "kernel": "http://s3/boot-images/a/b/vmlinuz", "params": "quiet"}
    # PUT upserts: 200, empty body, referral token
    put = oc.put(BP, json=one)
    assert put.status_code == 200 and put.content == b"" and put.headers["BSS-Referral-Token"]
    # POST is create-only: existing keys are kept as they are (OpenCHAMI Postgres backend)
    post = oc.post(BP, json=dict(one, params="changed", hosts=["x1000c0s0b0n0", "x1000c0s1b0n0"]))
    assert post.status_code == 201 and post.content == b"" and post.headers["BSS-Referral-Token"]
    got = {tuple(e["hosts"]): e for e in oc.get(BP + "?name=x1000c0s0b0n0,x1000c0s1b0n0").json()}
    assert got[("x1000c0s0b0n0",)]["params"] == "quiet" and got[("x1000c0s1b0n0",)]["params"] == "changed"
    entry = got[("x1000c0s0b0n0",)]
    assert entry["cloud-init"] == {"meta-data": None, "user-data": None, "phone-home": {
        "pub_key_dsa": "", "pub_key_rsa": "", "pub_key_ecdsa": "", "instance_id": "", "hostname": "", "fqdn": ""}}
    # POST validates hosts as node xnames
    bad = oc.post(BP, json={"hosts": ["x1000c0s0b0"], "kernel": "k"})
    assert bad.status_code == 400 and "invalid xname type" in bad.json()["detail"]
    # PATCH only existing keys, only given fields
    assert oc.patch(BP, json={"hosts": ["x1000c0s0b0n0"], "params": "patched"}).status_code == 200
    patched = oc.get(BP + "?name=x1000c0s0b0n0").json()[0]
    assert patched["params"] == "patched" and patched["kernel"] == one["kernel"]
    missing = oc.patch(BP, json={"hosts": ["x1000c0s3b0n0"], "params": "x"})
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
    # GET with a filter that matches nothing is 404; by NID and MAC works
    assert oc.get(BP + "?name=x1000c0s3b0n0").status_code == 404
    assert oc.get(BP + "?nid=abc").status_code == 400
    assert oc.put(BP, json={"nids": [3], "kernel": "k3"}).status_code == 200
    assert oc.get(BP + "?nid=3").json()[0]["nids"] == [3]
    # DELETE removes keys
    assert oc.delete(BP, json={"hosts": ["x1000c0s1b0n0"], "nids": [3]}).status_code == 200
    assert oc.get(BP + "?name=x1000c0s1b0n0").status_code == 404
    # the CSM (etcd) face lists one entry per key; the OpenCHAMI face one per boot config
    assert oc.put(BP, json={"hosts": ["x1000c0s2b0n0", "x1000c0s3b0n0"], "kernel": "kk"}).status_code == 200
    oc_entries = [e for e in oc.get(BP).json() if e.get("kernel") == "kk"]
    assert [sorted(e["hosts"]) for e in oc_entries] == [["x1000c0s2b0n0", "x1000c0s3b0n0"]]
    csm = site.session("csm")
    csm_entries = [e for e in csm.get("/apis/bss/boot/v1/bootparameters").json() if e.get("kernel") == "kk"]
    assert sorted(e["hosts"][0] for e in csm_entries) == ["x1000c0s2b0n0", "x1000c0s3b0n0"]
    # CSM POST fails when the key exists
    assert csm.post("/apis/bss/boot/v1/bootparameters", json={"hosts": ["x1000c0s2b0n0"], "kernel": "z"}).status_code == 400


def test_get_is_null_when_nothing_is_stored(lab_server_factory):
    server = lab_server_factory()
    resp = server.session("openchami").get(BP)
    assert resp.status_code == 200 and resp.content.strip() == b"null"


def test_bootscript(site, oc):
    oc.put(BP, json={"hosts": ["x1000c0s0b0n0"], "kernel": "http://s3/k", "initrd": "http://s3/i", "params": "ro"})
    public = site.session("openchami", token=False)
    resp = public.get("/boot/v1/bootscript?name=x1000c0s0b0n0")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    script = resp.text
    assert script.startswith("#!ipxe\nkernel --name kernel http://s3/k initrd=initrd ro xname=x1000c0s0b0n0 nid=1 ")
    assert "BOOTIF=01-" in script and "initrd --name initrd http://s3/i || goto boot_retry" in script
    by_mac = public.get(f"/boot/v1/bootscript?mac={site.admin('GET', '/nodes').json()['nodes'][0]['mac']}")
    assert "xname=x1000c0s0b0n0" in by_mac.text
    none = public.get("/boot/v1/bootscript")
    assert none.status_code == 400 and none.json()["detail"] == "Need a mac=, name=, or nid= parameter"
    assert public.get(BP).status_code == 401  # bootparameters are protected, bootscript is not


def test_cloud_init_admin_groups(site):
    ci = site.session("openchami", token=False)  # the real server has no auth on admin
    g = {"name": "compute", "description": "c", "meta-data": {"syslog": "10.1.1.1"},
         "file": {"content": base64.b64encode(b"#cloud-config\nruncmd: [echo hi]\n").decode(), "encoding": "base64"}}
    r = ci.post("/cloud-init/admin/groups", json=g)
    assert r.status_code == 201 and r.headers["Location"] == "/groups/compute"
    dup = ci.post("/cloud-init/admin/groups", json=g)
    assert dup.status_code == 409 and dup.headers["Content-Type"].startswith("text/plain")
    assert dup.text.strip() == "group 'compute' not added as it already exists"
    assert ci.post("/cloud-init/admin/groups", json={"description": "x"}).status_code == 422
    listing = ci.get("/cloud-init/admin/groups").json()
    assert listing["compute"]["meta-data"] == {"syslog": "10.1.1.1"}  # map keyed by name, key 'meta-data'
    assert ci.put("/cloud-init/admin/groups/compute", json=dict(g, description="replaced")).status_code == 201
    assert ci.get("/cloud-init/admin/groups/compute").json()["description"] == "replaced"
    assert ci.put("/cloud-init/admin/groups/newgrp", json={"description": "made by PUT"}).status_code == 201
    assert ci.delete("/cloud-init/admin/groups/newgrp").status_code == 200
    assert ci.delete("/cloud-init/admin/groups/newgrp").status_code == 200  # always 200
    nf = ci.get("/cloud-init/admin/groups/newgrp")
    assert nf.status_code == 404 and nf.text.strip() == "group (newgrp) not found in memstore"
    # the gateway strips /cloud-init: the service also answers at its root
    assert ci.get("/admin/groups").json().keys() == listing.keys()
    d = ci.get("/cloud-init/admin/cluster-defaults").json()
    assert "cloud_provider" in d and d["short-name"] == "nid" and d["nid-length"] == 6
    assert ci.post("/cloud-init/admin/cluster-defaults", json={"region": "lab-1"}).status_code == 201
    assert ci.get("/cloud-init/admin/cluster-defaults").json()["region"] == "lab-1"


def test_cloud_init_node_data(site):
    ci = site.session("openchami", token=False)
    smd = site.session("openchami")
    smd.post("/hsm/v2/groups", json={"label": "compute", "members": {"ids": ["x1000c0s1b0n0"]}})
    base = "/cloud-init/admin/impersonation/x1000c0s1b0n0"
    md = yaml.safe_load(ci.get(base + "/meta-data").text)
    assert md["hostname"] == "nid000002" and md["local-hostname"] == "nid000002"
    v1 = md["instance_data"]["v1"]
    assert v1["local_ipv4"] == "10.252.1.2" and v1["vendor_data"]["groups"]["compute"]["syslog"] == "10.1.1.1"
    assert ci.get(base + "/user-data").text.startswith("#cloud-config")
    vendor = ci.get(base + "/vendor-data").text
    assert vendor.startswith("#include\n") and vendor.rstrip().endswith("/cloud-init/compute.yaml")
    assert ci.get(base + "/compute.yaml").text == "#cloud-config\nruncmd: [echo hi]\n"  # base64 decoded
    assert ci.get(base + "/other.yaml").status_code == 404
    # identified by source address: 127.0.0.1 is no node's address
    assert ci.get("/cloud-init/meta-data").status_code == 422
    # a node whose EthernetInterface holds 127.0.0.1 is who asks from loopback
    smd.post("/hsm/v2/Inventory/EthernetInterfaces", json={"MACAddress": "02:00:00:00:00:7f",
                                                           "ComponentID": "x1000c0s3b0n0",
                                                           "IPAddresses": [{"IPAddress": "127.0.0.1"}]})
    assert yaml.safe_load(ci.get("/cloud-init/meta-data").text)["hostname"] == "nid000004"
