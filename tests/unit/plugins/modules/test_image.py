"""image and image_info: recipe builds with podman (a recorded podman), IMS jobs, provenance, usage."""
import json
import re
from urllib.parse import urlparse

import pytest

from ansible.module_utils import basic
from ansible_collections.hpc.vcluster.plugins.module_utils import _wait
from ansible_collections.hpc.vcluster.plugins.module_utils._podman import recipe_sha256
from ansible_collections.hpc.vcluster.plugins.modules import image, image_info

from vc_harness import URL, FakeBss, FakeSmd, Failed, problem, run

BASE = "localhost/vclab-base:bookworm"
RECIPE = {"options": {"name": "compute-blue", "publish_tags": ["v1", "latest"], "parent": BASE, "pkg_manager": "apt"},
          "packages": ["chrony"], "cmds": [{"cmd": "echo blue > /etc/vcluster"}]}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(_wait.time, "sleep", lambda s: None)


class FakePodman:
    """What the module asks podman, and a small image store that answers like podman 4."""

    def __init__(self, monkeypatch):
        self.images = {BASE: {"Id": "a" * 64, "Labels": {}, "Created": 1700000000}}
        self.calls, self.envs, self.containers = [], [], {}
        self.fail_on = None
        fake = self

        def run_command(module, argv, **kwargs):
            return fake.run_command(module, argv, **kwargs)

        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda mod, name, required=False: "/usr/bin/podman")

    def run_command(self, module, argv, environ_update=None, **kwargs):
        argv = list(argv)[1:]
        self.calls.append(argv)
        self.envs.append(environ_update)
        if self.fail_on and argv[0] == self.fail_on[0] and self.fail_on[1] in " ".join(argv):
            return 1, "E: Unable to locate package nosuch", "exit status 100"
        cmd = argv[0]
        if cmd == "image" and argv[1] == "inspect":
            img = self.images.get(argv[2]) or next((i for i in self.images.values() if "sha256:" + i["Id"] == argv[2]), None)
            if not img:
                return 125, "[]", "Error: %s: image not known" % argv[2]
            return 0, json.dumps([{"Id": img["Id"], "Config": {"Labels": img["Labels"]}, "Created": img["Created"]}]), ""
        if cmd == "images":
            filters = [argv[i + 1] for i, a in enumerate(argv) if a == "--filter"]
            rows = []
            for ref, img in self.images.items():
                ok = True
                for f in filters:
                    key, value = f.split("=", 1)
                    if key == "label":
                        lk, lv = (value.split("=", 1) + [""])[:2]
                        ok = ok and lk in img["Labels"] and (not lv or img["Labels"][lk] == lv)
                    elif key == "reference":
                        ok = ok and ref.startswith(value + ":")
                    elif key == "dangling":
                        ok = ok and ref.startswith("<none>")
                if ok:  # podman 4: one row per name, each with every name of the image
                    names = sorted(r for r, i in self.images.items() if i["Id"] == img["Id"])
                    rows.append({"Id": img["Id"], "Names": names, "Labels": img["Labels"], "Created": img["Created"],
                                 "Size": 1000})
            return 0, json.dumps(rows), ""
        if cmd == "run":
            name = argv[argv.index("--name") + 1]
            self.containers[name] = {"image": argv[-2]}
            return 0, "cid", ""
        if cmd in ("exec", "cp"):
            return 0, "", ""
        if cmd == "commit":
            labels = {}
            for i, a in enumerate(argv):
                if a == "--change" and argv[i + 1].startswith("LABEL "):
                    key, value = argv[i + 1][6:].split("=", 1)
                    labels[key] = json.loads(value)
            self.images[argv[-1]] = {"Id": "%064x" % (len(self.images) + 1), "Labels": labels, "Created": 1800000000}
            return 0, "", ""
        if cmd == "tag":
            src = self.images.get(argv[1]) or next(i for i in self.images.values() if "sha256:" + i["Id"] == argv[1])
            self.images[argv[2]] = src
            return 0, "", ""
        if cmd == "untag":
            img = self.images.pop(argv[1])
            if not any(i is img for i in self.images.values()):
                self.images["<none>:%s" % img["Id"][:6]] = img
            return 0, "", ""
        if cmd == "rmi":
            for ref in [r for r, i in self.images.items() if i["Id"] == argv[1] or r == argv[1]]:
                del self.images[ref]
            return 0, "", ""
        if cmd == "rm":
            self.containers.pop(argv[-1], None)
            return 0, "", ""
        if cmd in ("push", "pull"):
            return 0, "", ""
        raise AssertionError("unexpected podman call %s" % argv)

    def ran(self, cmd):
        return [c for c in self.calls if c[0] == cmd]


def test_build_records_provenance_and_is_idempotent(monkeypatch):
    pod = FakePodman(monkeypatch)
    res = run(image.main, {"recipe": RECIPE, "builder": "alice@ctl", "containers_conf": "/etc/vc/containers.conf"},
              site=True)
    assert res["changed"] and res["outcome"] == "built"
    img = pod.images["localhost/compute-blue:v1"]
    assert pod.images["localhost/compute-blue:latest"] is img
    labels = img["Labels"]
    assert labels["io.vcluster.image.recipe-sha256"] == recipe_sha256(RECIPE)
    assert labels["io.vcluster.image.parent-digest"] == "sha256:" + "a" * 64
    assert labels["io.vcluster.image.builder"] == "alice@ctl"
    assert labels["org.openchami.image.packages"] == "chrony" and labels["org.openchami.image.parent"] == BASE
    assert res["image"]["recipe_sha256"] == labels["io.vcluster.image.recipe-sha256"]
    execs = [" ".join(c) for c in pod.ran("exec")]
    assert any("apt-get install" in e and "'chrony'" in e for e in execs)
    assert any("echo blue > /etc/vcluster" in e for e in execs)
    assert pod.ran("commit")[0][-1] == "localhost/compute-blue:v1"
    assert "CMD [\"/sbin/init\"]" in pod.ran("commit")[0]
    assert pod.containers == {}  # the build container is removed
    assert {"CONTAINERS_CONF": "/etc/vc/containers.conf"} in pod.envs
    builds = len(pod.ran("commit"))
    again = run(image.main, {"recipe": RECIPE, "builder": "alice@ctl"})
    assert again["changed"] is False and len(pod.ran("commit")) == builds


def test_same_recipe_other_tag_is_tagged_not_rebuilt_and_change_rebuilds(monkeypatch):
    pod = FakePodman(monkeypatch)
    run(image.main, {"recipe": RECIPE})
    res = run(image.main, {"recipe": RECIPE, "tags": ["v2"]})
    assert res["outcome"] == "tagged" and len(pod.ran("commit")) == 1
    assert pod.images["localhost/compute-blue:v2"]["Id"] == pod.images["localhost/compute-blue:v1"]["Id"]
    changed = dict(RECIPE, packages=["chrony", "vim"])
    res = run(image.main, {"recipe": changed}, check=True)
    assert res["changed"] and res["outcome"] == "built" and len(pod.ran("commit")) == 1
    assert res["diff"]["before"]["recipe_sha256"] != res["diff"]["after"]["recipe_sha256"]
    run(image.main, {"recipe": changed})
    assert len(pod.ran("commit")) == 2


def test_failed_step_is_reported_and_container_removed(monkeypatch):
    pod = FakePodman(monkeypatch)
    pod.fail_on = ("exec", "apt-get install")
    with pytest.raises(Failed) as err:
        run(image.main, {"recipe": dict(RECIPE, packages=["nosuch"])})
    assert "install nosuch" in err.value.result["msg"] and "Unable to locate package" in err.value.result["msg"]
    assert pod.containers == {} and not pod.ran("commit")


def test_recipe_checks(monkeypatch):
    FakePodman(monkeypatch)
    for recipe, text in (({"options": {"name": "x", "parent": "scratch"}}, "parent is needed"),
                         ({"options": {"name": "x", "parent": BASE, "pkg_manager": "pacman"}}, "not supported"),
                         ({"options": {"name": "x", "parent": BASE}, "packages": ["a;rm -rf /"]}, "not a package"),
                         ({"options": {"name": "X Y", "parent": BASE}}, "invalid"),
                         ({"options": {"name": "x", "parent": "localhost/nope:1"}}, "does not exist")):
        with pytest.raises(Failed) as err:
            run(image.main, {"recipe": recipe})
        assert text in err.value.result["msg"], err.value.result["msg"]


def test_dnf_recipe_with_repos_and_push(monkeypatch):
    pod = FakePodman(monkeypatch)
    recipe = {"options": {"name": "rocky", "parent": BASE, "pkg_manager": "dnf", "publish_tags": "9.5",
                          "publish_registry": "reg.example:5000/demo"},
              "repos": [{"alias": "epel", "url": "https://epel.example/9/", "gpg": "https://epel.example/KEY"}],
              "package_groups": ["Development Tools"], "packages": ["slurm"], "remove_packages": ["firewalld"]}
    res = run(image.main, {"recipe": recipe, "registry_opts_push": ["--tls-verify=false"]})
    execs = [" ".join(c) for c in pod.ran("exec")]
    assert any("/etc/yum.repos.d/epel.repo" in e and "gpgkey=https://epel.example/KEY" in e for e in execs)
    assert any("dnf groupinstall -y 'Development Tools'" in e for e in execs)
    assert any("dnf remove -y 'firewalld'" in e for e in execs)
    assert pod.ran("push") == [["push", "--tls-verify=false", "localhost/rocky:9.5", "reg.example:5000/demo/rocky:9.5"]]
    assert res["image"]["published"] == ["reg.example:5000/demo/rocky:9.5"]


def test_copyfiles_are_hashed_and_copied(monkeypatch, tmp_path):
    pod = FakePodman(monkeypatch)
    (tmp_path / "motd").write_text("hello\n")
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text("options: {name: withfile, parent: %s}\ncopyfiles:\n  - {src: motd, dest: /etc/motd}\n" % BASE)
    first = run(image.main, {"recipe_file": str(recipe_file)})
    assert first["changed"] and pod.ran("cp")[0] == ["cp", str(tmp_path / "motd"), pod.ran("cp")[0][2]]
    assert run(image.main, {"recipe_file": str(recipe_file)})["changed"] is False
    (tmp_path / "motd").write_text("changed\n")
    assert run(image.main, {"recipe_file": str(recipe_file)})["outcome"] == "built"


def test_absent_removes_tags(monkeypatch):
    pod = FakePodman(monkeypatch)
    run(image.main, {"recipe": RECIPE})
    res = run(image.main, {"name": "compute-blue", "state": "absent"})
    assert res["changed"] and not any(r.startswith("localhost/compute-blue") for r in pod.images)
    assert run(image.main, {"name": "compute-blue", "state": "absent"})["changed"] is False


def test_image_info_local_provenance_and_usage(monkeypatch, rsps):
    pod = FakePodman(monkeypatch)
    run(image.main, {"recipe": RECIPE, "builder": "alice@ctl"})
    pod.images["localhost/other:1"] = {"Id": "f" * 64, "Labels": {}, "Created": 1}  # not an image-builder image
    FakeSmd(rsps)
    bss = FakeBss(rsps)
    bss.hosts["x1000c0s0b0n0"] = {"kernel": URL + "/boot-images/compute-blue/v1/vmlinuz", "initrd": "", "params": ""}
    bss.hosts["x1000c0s1b0n0"] = {"kernel": "", "initrd": "",
                                  "params": "root=live:http://s3/boot-images/compute-blue/latest/rootfs.squashfs"}
    res = run(image_info.main, {})
    assert [i["name"] for i in res["images"]] == ["compute-blue"]
    info = res["images"][0]
    assert sorted(info["tags"]) == ["latest", "v1"] and info["location"] == "local"
    assert info["provenance"]["builder"] == "alice@ctl" and info["provenance"]["recipe"] == RECIPE
    assert info["provenance"]["packages"] == ["chrony"]
    assert info["used_by"] == ["x1000c0s0b0n0", "x1000c0s1b0n0"]
    assert run(image_info.main, {"name": "nothing"})["images"] == []


# ------------------------------------------------------------------------------ IMS (CSM)
IMS = URL + "/apis/ims/v3"


class FakeIms:
    def __init__(self, rsps, job_status="success"):
        self.recipes, self.images, self.jobs, self.keys, self.writes = {}, {}, {}, {}, []
        self.job_status = job_status
        for method in ("GET", "POST", "PATCH", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(IMS) + r"/.*"), callback=self._dispatch)

    def _dispatch(self, request):
        path = urlparse(request.url).path[len(urlparse(IMS).path):]
        body = json.loads(request.body) if request.body else None
        ok = (200, {"Content-Type": "application/json"})
        if request.method != "GET":
            self.writes.append((request.method, path, body))
        coll = {"/recipes": self.recipes, "/images": self.images, "/jobs": self.jobs, "/public-keys": self.keys}
        if path in coll:
            if request.method == "GET":
                return ok + (json.dumps(list(coll[path].values())),)
            oid = "%08d-0000-4000-8000-%012d" % (len(self.writes), len(coll[path]))
            rec = dict(body, id=oid, created="2026-11-22T00:00:%02d" % len(self.writes))
            if path == "/jobs":
                rec.update(status="creating", polls=0)
            coll[path][oid] = rec
            return (201, {}, json.dumps(rec))
        m = re.match(r"^(/recipes|/images|/jobs)/([^/]+)$", path)
        if m:
            rec = coll[m.group(1)].get(m.group(2))
            if rec is None:
                return problem(404, "Not Found", "record does not exist")
            if m.group(1) == "/jobs":
                rec["polls"] += 1
                if rec["polls"] >= 2:
                    rec["status"] = self.job_status
                    if self.job_status == "success" and not rec.get("resultant_image_id"):
                        iid = "%08d-1111-4000-8000-000000000000" % len(self.images)
                        self.images[iid] = {"id": iid, "name": rec["image_root_archive_name"], "created": "2026",
                                            "link": {"path": "s3://boot-images/%s/manifest.json" % iid, "type": "s3"},
                                            "metadata": {"vclab.podman_ref": "localhost/x:y"}}
                        rec["resultant_image_id"] = iid
            if request.method == "PATCH":
                rec.setdefault("metadata", {})[body["metadata"]["key"]] = body["metadata"]["value"]
            if request.method == "DELETE":
                del coll[m.group(1)][m.group(2)]
                return (204, {}, "")
            return ok + (json.dumps(rec),)
        return problem(404, "Not Found", path)


def test_ims_build_job_provenance_idempotent_and_info(rsps):
    FakeSmd(rsps, "csm")
    bss = FakeBss(rsps, "csm")
    ims = FakeIms(rsps)
    args = {"recipe": RECIPE, "builder": "bob", "ims": {"public_key": "ssh-ed25519 AAAA test"}}
    res = run(image.main, args, kind="csm")
    assert res["changed"] and res["outcome"] == "built"
    recipe = list(ims.recipes.values())[0]
    content = json.loads(next(p["value"] for p in recipe["template_dictionary"] if p["key"] == "vclab.recipe"))
    assert content["packages"] == ["chrony"]
    job = list(ims.jobs.values())[0]
    assert job["artifact_id"] == recipe["id"] and job["public_key_id"] in ims.keys
    assert job["image_root_archive_name"] == "compute-blue-v1"
    meta = ims.images[res["image"]["ims_id"]]["metadata"]
    assert meta["vcluster.recipe_sha256"] == recipe_sha256(RECIPE) and meta["vcluster.builder"] == "bob"
    assert meta["vcluster.name"] == "compute-blue" and meta["vcluster.tag"] == "v1"
    assert run(image.main, args, kind="csm")["changed"] is False
    assert len(ims.jobs) == 1 and len(ims.keys) == 1
    bss.hosts["x1000c0s0b0n0"] = {"kernel": "s3://boot-images/%s/kernel" % res["image"]["ims_id"], "initrd": "", "params": ""}
    info = run(image_info.main, {}, kind="csm")["images"]
    assert info[0]["ims_id"] == res["image"]["ims_id"] and info[0]["provenance"]["builder"] == "bob"
    assert info[0]["used_by"] == ["x1000c0s0b0n0"] and info[0]["location"] == "ims"
    res = run(image.main, {"name": "compute-blue", "state": "absent"}, kind="csm")
    assert res["changed"] and ims.images == {}


def test_ims_job_error_is_reported(rsps):
    FakeSmd(rsps, "csm")
    ims = FakeIms(rsps, job_status="error")
    ims.keys["k"] = {"id": "k", "name": "hpc.vcluster", "public_key": "ssh-ed25519 X"}
    with pytest.raises(Failed) as err:
        run(image.main, {"recipe": RECIPE}, kind="csm")
    assert "ended with status error" in err.value.result["msg"]
