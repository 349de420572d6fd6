"""cloud_init (OpenCHAMI admin API) and bos_session (CSM BOS v2 templates and sessions)."""
import base64
import json
import re
from urllib.parse import urlparse

import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils import _wait
from ansible_collections.hpc.vcluster.plugins.modules import bos_session, cloud_init

from vc_harness import URL, FakeSmd, Failed, problem, run

N0, N1 = "x1000c0s0b0n0", "x1000c0s1b0n0"
CI = URL + "/cloud-init/admin/groups"
BOS = URL + "/apis/bos/v2"
IMS = URL + "/apis/ims/v3"
IMAGE_ID = "4bf91021-8d99-4adf-945f-46de2ff50a3d"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(_wait.time, "sleep", lambda s: None)


class FakeCloudInit:
    def __init__(self, rsps):
        self.groups, self.writes = {}, []
        for method in ("GET", "PUT", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(CI) + r"/.*"), callback=self._dispatch)

    def _dispatch(self, request):
        name = urlparse(request.url).path.rsplit("/", 1)[1]
        if request.method == "GET":
            if name not in self.groups:
                return (404, {"Content-Type": "text/plain"}, "group (%s) not found in memstore" % name)
            return (200, {}, json.dumps(self.groups[name]))
        self.writes.append((request.method, name))
        if request.method == "PUT":
            body = json.loads(request.body)
            self.groups[name] = dict(body, versions={})
            return (201, {"Location": "/groups/" + name}, "")
        self.groups.pop(name, None)
        return (200, {}, "")


def test_cloud_init_set_idempotent_diff_and_absent(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0])
    ci = FakeCloudInit(rsps)
    args = {"label": "vc_blue", "meta_data": {"syslog": "10.0.0.1"}, "cloud_config": {"runcmd": [["touch", "/x"]]}}
    res = run(cloud_init.main, args)
    assert res["changed"] and res["diff"]["before"] == {}
    stored = ci.groups["vc_blue"]
    assert stored["meta-data"] == {"syslog": "10.0.0.1"} and stored["name"] == "vc_blue"
    assert stored["file"]["content"].startswith("#cloud-config\n") and '"runcmd"' in stored["file"]["content"]
    assert run(cloud_init.main, args)["changed"] is False
    res = run(cloud_init.main, dict(args, encoding="base64"))
    assert res["changed"] and base64.b64decode(ci.groups["vc_blue"]["file"]["content"]).decode().startswith("#cloud-config")
    assert run(cloud_init.main, dict(args, encoding="base64"))["changed"] is False
    res = run(cloud_init.main, {"label": "vc_blue", "state": "absent"}, check=True)
    assert res["changed"] and "vc_blue" in ci.groups
    run(cloud_init.main, {"label": "vc_blue", "state": "absent"})
    assert "vc_blue" not in ci.groups
    assert run(cloud_init.main, {"label": "vc_blue", "state": "absent"})["changed"] is False


def test_cloud_init_warns_for_unknown_label_and_refuses_csm(rsps):
    FakeSmd(rsps)
    FakeCloudInit(rsps)
    res = run(cloud_init.main, {"label": "vc_none", "user_data": "#cloud-config\n"})
    assert any("no node will get" in w for w in res["warnings"])
    with pytest.raises(Failed) as err:
        run(cloud_init.main, {"label": "vc_blue"}, kind="csm")
    assert "CSM has no cloud-init" in err.value.result["msg"]


# ------------------------------------------------------------------------------ BOS
class FakeBos:
    def __init__(self, rsps, fail=False):
        self.templates, self.sessions, self.writes, self.fail = {}, {}, [], fail
        for method in ("GET", "PUT", "POST", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(BOS) + r"/.*"), callback=self._dispatch)
        rsps.add_callback("GET", IMS + "/images", callback=lambda r: (200, {}, json.dumps([
            {"id": IMAGE_ID, "name": "compute-blue-v1", "created": "2026-11-01T00:00:00",
             "link": {"path": "s3://boot-images/%s/manifest.json" % IMAGE_ID, "etag": "abc", "type": "s3"}}])))

    def _dispatch(self, request):
        path = urlparse(request.url).path[len(urlparse(BOS).path):]
        body = json.loads(request.body) if request.body else None
        ok = (200, {"Content-Type": "application/json"})
        if request.method != "GET":
            self.writes.append((request.method, path, body))
        m = re.match(r"^/sessiontemplates/([^/]+)$", path)
        if m:
            name = m.group(1)
            if request.method == "PUT":
                stored = dict(body, name=name, tenant=None, links=[{"href": "/v2/sessiontemplates/" + name}])
                stored["boot_sets"] = dict((k, dict((kk, vv) for kk, vv in v.items() if kk != "name"))
                                           for k, v in body["boot_sets"].items())
                self.templates[name] = stored
                return ok + (json.dumps(stored),)
            if name not in self.templates:
                return problem(404, "Not Found", "Session template '%s' does not exist" % name)
            if request.method == "DELETE":
                del self.templates[name]
                return (204, {}, "")
            return ok + (json.dumps(self.templates[name]),)
        if path == "/sessions" and request.method == "POST":
            name = body.get("name") or "sess-%d" % len(self.sessions)
            self.sessions[name] = {"name": name, "operation": body["operation"], "template_name": body["template_name"],
                                   "limit": body.get("limit", ""), "polls": 0,
                                   "status": {"status": "pending", "error": None}}
            return (201, {}, json.dumps(self.sessions[name]))
        m = re.match(r"^/sessions/([^/]+)(/status)?$", path)
        if m:
            s = self.sessions.get(m.group(1))
            if s is None:
                return problem(404, "Not Found", "Session '%s' does not exist" % m.group(1))
            if m.group(2):
                return ok + (json.dumps({"status": s["status"]["status"], "percent_successful": 0 if self.fail else 100,
                                         "percent_failed": 100 if self.fail else 0,
                                         "error_summary": {"power on failed": {"count": 1, "list": N1}} if self.fail else {}}),)
            s["polls"] += 1
            s["status"]["status"] = "complete" if s["polls"] >= 2 else "running"
            return ok + (json.dumps(s),)
        return problem(404, "Not Found", path)


TEMPLATE_ARGS = {"template_name": "vc-blue", "image": {"name": "compute-blue-v1"}, "node_groups": ["vc_blue"],
                 "kernel_parameters": "console=ttyS0"}


def test_bos_template_from_image_and_labels_idempotent(rsps):
    FakeSmd(rsps, "csm")
    bos = FakeBos(rsps)
    res = run(bos_session.main, TEMPLATE_ARGS, kind="csm")
    assert res["changed"] and res["template_changed"]
    bs = bos.templates["vc-blue"]["boot_sets"]["compute"]
    assert bs["path"] == "s3://boot-images/%s/manifest.json" % IMAGE_ID and bs["etag"] == "abc"
    assert bs["node_groups"] == ["vc_blue"] and bs["kernel_parameters"] == "console=ttyS0"
    again = run(bos_session.main, TEMPLATE_ARGS, kind="csm")
    assert again["changed"] is False
    res = run(bos_session.main, dict(TEMPLATE_ARGS, kernel_parameters="quiet"), kind="csm", check=True)
    assert res["changed"] and res["diff"]["before"]["boot_sets"]["compute"]["kernel_parameters"] == "console=ttyS0"
    assert bos.templates["vc-blue"]["boot_sets"]["compute"]["kernel_parameters"] == "console=ttyS0"


def test_bos_named_session_waited_and_not_restarted(rsps):
    FakeSmd(rsps, "csm")
    bos = FakeBos(rsps)
    args = dict(TEMPLATE_ARGS, operation="boot", session_name="vc-blue-boot-1", poll_interval=0.1)
    res = run(bos_session.main, args, kind="csm")
    assert res["changed"] and res["session"]["status"]["status"] == "complete"
    assert res["session_status"]["percent_successful"] == 100
    again = run(bos_session.main, args, kind="csm")
    assert again["changed"] is False
    assert len([w for w in bos.writes if w[1] == "/sessions"]) == 1


def test_bos_failed_session_fails_with_bos_errors(rsps):
    FakeSmd(rsps, "csm")
    FakeBos(rsps, fail=True)
    with pytest.raises(Failed) as err:
        run(bos_session.main, dict(TEMPLATE_ARGS, operation="reboot"), kind="csm")
    assert "power on failed" in err.value.result["msg"] and N1 in err.value.result["msg"]


def test_bos_rbac_refuses_other_labels_and_roles(rsps):
    smd = FakeSmd(rsps, "csm")
    bos = FakeBos(rsps)
    with pytest.raises(Failed) as err:
        run(bos_session.main, dict(TEMPLATE_ARGS, allowed_labels=["vc_red"]), kind="csm")
    assert "access denied" in err.value.result["msg"]
    with pytest.raises(Failed) as err:
        run(bos_session.main, {"template_name": "t", "path": "s3://boot-images/x/manifest.json",
                               "node_roles_groups": ["Compute"], "allowed_labels": ["vc_blue"]}, kind="csm")
    assert "HSM roles" in err.value.result["msg"]
    assert bos.writes == [] and smd.writes == []


def test_bos_absent_and_openchami_refused(rsps):
    FakeSmd(rsps, "csm")
    bos = FakeBos(rsps)
    run(bos_session.main, TEMPLATE_ARGS, kind="csm")
    assert run(bos_session.main, {"template_name": "vc-blue", "state": "absent"}, kind="csm")["changed"]
    assert bos.templates == {}
    assert run(bos_session.main, {"template_name": "vc-blue", "state": "absent"}, kind="csm")["changed"] is False
    with pytest.raises(Failed) as err:
        run(bos_session.main, TEMPLATE_ARGS)
    assert "BOS is a CSM service" in err.value.result["msg"]
