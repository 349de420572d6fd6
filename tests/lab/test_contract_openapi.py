"""PCS, BOS and IMS replies against their OpenAPI 3 files with openapi-core (real requests)."""
from __future__ import annotations

import time

import pytest

from conftest import PCS_PREFIX, make_nodes
from contract import OpenAPI3

PCS_SPEC = {"openchami": "openchami/power-control-swagger.yaml", "csm": "csm/hms-power-control_swagger.yaml"}


@pytest.fixture(scope="module")
def site(lab):
    make_nodes(lab, 3, 0)
    return lab


@pytest.mark.parametrize("face", ["openchami", "csm"])
def test_pcs_replies(site, face):
    api = OpenAPI3(PCS_SPEC[face], site.url + PCS_PREFIX[face])
    s = site.session(face)
    p = PCS_PREFIX[face]
    checked = []

    def check(resp, status):
        assert resp.status_code == status, resp.text
        api.validate(resp)
        checked.append(resp)
        return resp.json() if resp.content else None

    start = check(s.post(p + "/transitions", json={"operation": "off", "location": [{"xname": "x1000c0s0b0n0"},
                                                                                    {"xname": "x9c0s0b0n0"}]}), 200)
    done = site.wait_transition(start["transitionID"], face)
    check(s.get(p + f"/transitions/{start['transitionID']}"), 200)
    check(s.get(p + "/transitions"), 200)
    check(s.delete(p + f"/transitions/{start['transitionID']}"), 400)
    check(s.get(p + "/transitions/00000000-0000-0000-0000-000000000000"), 404)
    check(s.post(p + "/transitions", json={"operation": "sideways", "location": [{"xname": "x1000c0s0b0n0"}]}), 400)
    check(s.get(p + "/power-status?xname=x1000c0s1b0n0&xname=x9c0s0b0n0"), 200)
    check(s.post(p + "/power-status", json={"xname": ["x1000c0s1b0n0"], "powerStateFilter": "off"}), 200)
    assert done["taskCounts"]["failed"] == 1 and len(checked) == 8


def test_bos_replies(site):
    api = OpenAPI3("csm/bos_openapi.yaml.in", site.url + "/apis/bos")
    s = site.session("csm")

    def check(resp, status):
        assert resp.status_code == status, resp.text
        api.validate(resp)
        return resp.json() if resp.content else None

    image = s.post("/apis/ims/v3/images", json={"name": "contract-image",
                                                "metadata": {"vclab.podman_ref": "localhost/vclab-base:bookworm"}})
    iid = image.json()["id"]
    tpl = {"description": "contract", "enable_cfs": False, "boot_sets": {"compute": {
        "name": "compute", "path": f"s3://boot-images/{iid}/manifest.json", "type": "s3",
        "kernel_parameters": "console=ttyS0", "node_list": ["x1000c0s1b0n0", "x1000c0s2b0n0"], "arch": "X86"}}}
    check(s.put("/apis/bos/v2/sessiontemplates/contract-tpl", json=tpl), 200)
    check(s.put("/apis/bos/v2/sessiontemplates/contract-bad", json=dict(tpl, bogus=1)), 400)
    check(s.get("/apis/bos/v2/sessiontemplates"), 200)
    check(s.get("/apis/bos/v2/sessiontemplates/contract-tpl"), 200)
    check(s.get("/apis/bos/v2/sessiontemplates/nope"), 404)
    check(s.get("/apis/bos/v2/sessiontemplatesvalid/contract-tpl"), 200)
    session = check(s.post("/apis/bos/v2/sessions", json={"operation": "boot", "template_name": "contract-tpl",
                                                          "name": "contract-session"}), 201)
    deadline = time.monotonic() + 30
    while s.get(f"/apis/bos/v2/sessions/{session['name']}").json()["status"]["status"] != "complete":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    check(s.get("/apis/bos/v2/sessions"), 200)
    check(s.get(f"/apis/bos/v2/sessions/{session['name']}"), 200)
    check(s.get(f"/apis/bos/v2/sessions/{session['name']}/status"), 200)
    check(s.get("/apis/bos/v2/components?ids=x1000c0s1b0n0,x1000c0s0b0n0"), 200)
    check(s.get("/apis/bos/v2/components/x1000c0s1b0n0"), 200)
    check(s.get("/apis/bos/v2/options"), 200)
    check(s.get("/apis/bos/v2/healthz"), 200)
    check(s.get("/apis/bos/v2/version"), 200)
    check(s.delete("/apis/bos/v2/sessiontemplates/contract-tpl"), 204)


def test_ims_replies(site):
    api = OpenAPI3("csm/ims_openapi.yaml", site.url + "/apis/ims")
    s = site.session("csm")

    def check(resp, status):
        assert resp.status_code == status, resp.text
        api.validate(resp)
        return resp.json() if resp.content else None

    key = check(s.post("/apis/ims/v3/public-keys", json={"name": "k", "public_key": "ssh-ed25519 AAAA test"}), 201)
    recipe = check(s.post("/apis/ims/v3/recipes", json={
        "name": "contract", "recipe_type": "kiwi-ng", "linux_distribution": "sles15",
        "template_dictionary": [{"key": "vclab.recipe", "value": '{"options": {"parent": "localhost/vclab-base:bookworm"}}'}]}),
        201)
    check(s.post("/apis/ims/v3/recipes", json={"name": "x", "recipe_type": "docker", "linux_distribution": "sles15"}),
          422)
    job = check(s.post("/apis/ims/v3/jobs", json={"job_type": "create", "artifact_id": recipe["id"],
                                                  "public_key_id": key["id"], "image_root_archive_name": "contract"}),
                201)
    deadline = time.monotonic() + 30
    while s.get(f"/apis/ims/v3/jobs/{job['id']}").json()["status"] not in ("success", "error"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    job = check(s.get(f"/apis/ims/v3/jobs/{job['id']}"), 200)
    assert job["status"] == "success", job
    check(s.get("/apis/ims/v3/jobs"), 200)
    check(s.get("/apis/ims/v3/recipes"), 200)
    check(s.get(f"/apis/ims/v3/recipes/{recipe['id']}"), 200)
    check(s.get("/apis/ims/v3/images"), 200)
    check(s.get(f"/apis/ims/v3/images/{job['resultant_image_id']}"), 200)
    check(s.patch(f"/apis/ims/v3/images/{job['resultant_image_id']}",
                  json={"metadata": {"operation": "set", "key": "owner", "value": "contract"}}), 200)
    check(s.delete(f"/apis/ims/v3/images/{job['resultant_image_id']}"), 204)
    check(s.get("/apis/ims/v3/deleted/images"), 200)
    check(s.get(f"/apis/ims/v3/deleted/images/{job['resultant_image_id']}"), 200)
    check(s.get("/apis/ims/v3/images/00000000-0000-0000-0000-000000000000"), 404)
    check(s.get("/apis/ims/v3/public-keys"), 200)
