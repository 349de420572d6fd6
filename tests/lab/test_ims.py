"""IMS v3 end to end on the records driver: recipe content, create jobs, provenance, soft delete."""
from __future__ import annotations

import hashlib
import json
import time

import pytest
import yaml

RECIPE = {"options": {"name": "compute-base", "parent": "localhost/vclab-base:bookworm", "publish_tags": ["2026.11"]},
          "packages": ["slurmd", "munge"], "cmds": [{"cmd": "systemctl enable slurmd"}]}


@pytest.fixture(scope="module")
def csm(lab):
    return lab.session("csm")


@pytest.fixture(scope="module")
def key(csm):
    resp = csm.post("/apis/ims/v3/public-keys", json={"name": "lab", "public_key": "ssh-ed25519 AAAAC3 lab"})
    assert resp.status_code == 201
    return resp.json()["id"]


def recipe(csm, **extra) -> dict:
    body = {"name": "compute-base", "recipe_type": "kiwi-ng", "linux_distribution": "sles15", **extra}
    resp = csm.post("/apis/ims/v3/recipes", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def run_job(csm, recipe_id: str, key: str, name: str = "compute-base") -> dict:
    resp = csm.post("/apis/ims/v3/jobs", json={"job_type": "create", "artifact_id": recipe_id, "public_key_id": key,
                                               "image_root_archive_name": name, "enable_debug": False})
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert job["status"] == "creating" and job["resultant_image_id"] is None
    seen = {job["status"]}
    deadline = time.monotonic() + 60
    while job["status"] not in ("success", "error"):
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
        job = csm.get(f"/apis/ims/v3/jobs/{job['id']}").json()
        seen.add(job["status"])
    job["seen"] = seen
    return job


def test_create_job_with_uploaded_content(csm, key):
    r = recipe(csm)
    up = csm.put(f"/apis/ims/lab/recipes/{r['id']}/content", data=yaml.safe_dump(RECIPE),
                 headers={"Content-Type": "application/yaml"})
    assert up.status_code == 200
    sha = hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()
    assert up.json()["sha256"] == sha
    assert csm.get(f"/apis/ims/v3/recipes/{r['id']}").json()["link"]["path"] == \
        f"s3://ims/recipes/{r['id']}/recipe.tar.gz"
    job = run_job(csm, r["id"], key)
    assert job["status"] == "success", csm.get(f"/apis/ims/lab/jobs/{job['id']}/log").json()
    log = csm.get(f"/apis/ims/lab/jobs/{job['id']}/log").json()["log"]
    statuses = [line.split(" status ")[1] for line in log if " status " in line]
    assert statuses == ["fetching_recipe", "building_image", "packaging_artifacts", "success"]
    image = csm.get(f"/apis/ims/v3/images/{job['resultant_image_id']}").json()
    assert image["name"] == "compute-base" and image["arch"] == "x86_64"
    assert image["link"] == {"path": f"s3://boot-images/{image['id']}/manifest.json", "type": "s3",
                             "etag": image["link"]["etag"]}
    md = image["metadata"]
    assert md["vclab.recipe_id"] == r["id"] and md["vclab.recipe_sha256"] == sha
    assert md["vclab.parent"] == "localhost/vclab-base:bookworm" and md["vclab.parent_digest"].startswith("sha256:")
    assert md["vclab.podman_ref"] == f"localhost/compute-base:2026.11-{job['id'][:8]}"
    assert md["vclab.digest"].startswith("sha256:") and md["vclab.build_time"]
    assert "admin-client" in md["vclab.builder"] and job["id"] in md["vclab.builder"]


def test_create_job_with_template_dictionary(csm, key):
    r = recipe(csm, template_dictionary=[{"key": "vclab.recipe", "value": json.dumps(RECIPE)}])
    job = run_job(csm, r["id"], key, name="from-td")
    assert job["status"] == "success"
    md = csm.get(f"/apis/ims/v3/images/{job['resultant_image_id']}").json()["metadata"]
    assert md["vclab.recipe_sha256"] == hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()


def test_failing_jobs_say_why(csm, key):
    empty = recipe(csm)
    job = run_job(csm, empty["id"], key)
    assert job["status"] == "error" and job["resultant_image_id"] is None
    assert any("has no lab content" in line for line in csm.get(f"/apis/ims/lab/jobs/{job['id']}/log").json()["log"])
    orphan = recipe(csm, template_dictionary=[{"key": "vclab.recipe", "value": json.dumps(
        {"options": {"parent": "localhost/missing:1"}})}])
    job = run_job(csm, orphan["id"], key)
    assert job["status"] == "error"
    assert any("parent image localhost/missing:1 does not exist" in line
               for line in csm.get(f"/apis/ims/lab/jobs/{job['id']}/log").json()["log"])
    bad = csm.put(f"/apis/ims/lab/recipes/{empty['id']}/content", data="packages: [a]")
    assert bad.status_code == 422
    assert csm.post("/apis/ims/v3/jobs", json={"job_type": "create", "artifact_id": "00000000-0000-0000-0000-000000000000",
                                               "public_key_id": key, "image_root_archive_name": "x"}).status_code == 400


def test_records_validation_and_soft_delete(csm):
    assert csm.post("/apis/ims/v3/recipes", json={"name": "x", "recipe_type": "kiwi-ng",
                                                  "linux_distribution": "debian12"}).status_code == 422
    img = csm.post("/apis/ims/v3/images", json={"name": "scratch-img", "arch": "aarch64"}).json()
    assert img["arch"] == "aarch64"
    link = {"path": f"s3://boot-images/{img['id']}/manifest.json", "type": "s3", "etag": "e"}
    assert csm.patch(f"/apis/ims/v3/images/{img['id']}", json={"link": link}).status_code == 200
    twice = csm.patch(f"/apis/ims/v3/images/{img['id']}", json={"link": link})
    assert twice.status_code == 409
    assert twice.json()["detail"] == "The IMS image record has already been associated with an artifact link"
    patched = csm.patch(f"/apis/ims/v3/images/{img['id']}",
                        json={"metadata": {"operation": "set", "key": "owner", "value": "blue"}}).json()
    assert patched["metadata"] == {"owner": "blue"}
    assert csm.delete(f"/apis/ims/v3/images/{img['id']}").status_code == 204
    assert csm.get(f"/apis/ims/v3/images/{img['id']}").status_code == 404
    deleted = csm.get(f"/apis/ims/v3/deleted/images/{img['id']}").json()
    assert deleted["deleted"] and deleted["link"]["path"] == f"s3://boot-images/deleted/{img['id']}/manifest.json"
    assert csm.patch(f"/apis/ims/v3/deleted/images/{img['id']}", json={"operation": "undelete"}).status_code == 204
    back = csm.get(f"/apis/ims/v3/images/{img['id']}").json()
    assert back["link"]["path"] == link["path"] and "deleted" not in back
    assert csm.get(f"/apis/ims/v3/deleted/images/{img['id']}").status_code == 404


def test_recipe_patch(csm):
    rec = recipe(csm, template_dictionary=[{"key": "a", "value": 1}])
    assert rec["template_dictionary"] == [{"key": "a", "value": "1"}] and "link" not in rec
    url = f"/apis/ims/v3/recipes/{rec['id']}"
    link = {"path": f"s3://ims/recipes/{rec['id']}/recipe.tar.gz", "type": "s3", "etag": "e"}
    patched = csm.patch(url, json={"link": link, "arch": "aarch64",
                                   "template_dictionary": [{"key": "b", "value": "2"}]}).json()
    assert (patched["link"]["path"], patched["arch"]) == (link["path"], "aarch64")
    assert patched["template_dictionary"] == [{"key": "b", "value": "2"}]
    twice = csm.patch(url, json={"link": link})
    assert twice.status_code == 409
    assert twice.json()["detail"] == "The IMS recipe record has already been associated with an artifact link"
    assert csm.get(url).json()["arch"] == "aarch64"
