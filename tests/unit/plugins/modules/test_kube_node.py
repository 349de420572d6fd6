"""kube_node: cordon, drain (evictions, disruption budgets, refusals) and removal through the Kubernetes API.

No Kubernetes cluster can run on the project's machines (docs/alpernetes.md), so the API
is played by a small stateful fake on `responses` whose replies have the shapes of the
real API server's (Node and Pod objects, Eviction 201/429, Status 404).
"""
import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils import _kube
from ansible_collections.hpc.vcluster.plugins.modules import kube_node

from vc_harness import Failed, run

API = "https://k8s.example:6443"


def status(code, reason, message):
    return (code, {"Content-Type": "application/json"},
            json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                        "reason": reason, "code": code}))


def pod(name, ns="default", owner="ReplicaSet", phase="Running", emptydir=False, mirror=False):
    meta = {"name": name, "namespace": ns, "uid": "uid-" + name}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": name + "-owner", "controller": True}]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "x"}
    spec = {"nodeName": "nid000001", "volumes": [{"name": "tmp", "emptyDir": {}}] if emptydir else []}
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


class FakeKube:
    """Nodes and pods of one API server; `budget_refusals` 429s before an eviction is allowed."""

    def __init__(self, rsps, nodes=("nid000001",), pods=(), budget_refusals=0):
        self.nodes = dict((n, {"metadata": {"name": n}, "spec": {}}) for n in nodes)
        self.pods = dict(((p["metadata"]["namespace"], p["metadata"]["name"]), p) for p in pods)
        self.budget_refusals = budget_refusals
        self.calls = []
        self.auth = set()
        for method in ("GET", "PATCH", "POST", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(API) + r"/.*"), callback=self._dispatch)

    def _dispatch(self, request):
        url = urlparse(request.url)
        path, query = url.path, parse_qs(url.query)
        self.calls.append((request.method, path))
        self.auth.add(request.headers.get("Authorization"))
        ok = (200, {"Content-Type": "application/json"})
        m = re.match(r"^/api/v1/nodes/([^/]+)$", path)
        if m:
            node = self.nodes.get(m.group(1))
            if node is None:
                return status(404, "NotFound", 'nodes "%s" not found' % m.group(1))
            if request.method == "PATCH":
                assert request.headers["Content-Type"] == "application/merge-patch+json"
                node["spec"].update(json.loads(request.body)["spec"])
            if request.method == "DELETE":
                del self.nodes[m.group(1)]
            return ok + (json.dumps(node),)
        if path == "/api/v1/pods":
            wanted = query["fieldSelector"][0].split("=", 1)[1]
            items = [p for p in self.pods.values() if p["spec"]["nodeName"] == wanted]
            return ok + (json.dumps({"kind": "PodList", "items": items}),)
        m = re.match(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)(/eviction)?$", path)
        if m:
            key = (m.group(1), m.group(2))
            if key not in self.pods:
                return status(404, "NotFound", 'pods "%s" not found' % key[1])
            if m.group(3):
                body = json.loads(request.body)
                assert body["kind"] == "Eviction" and body["apiVersion"] == "policy/v1"
                if self.budget_refusals > 0:
                    self.budget_refusals -= 1
                    return status(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
                del self.pods[key]
                return (201, {"Content-Type": "application/json"}, json.dumps({"kind": "Status", "status": "Success"}))
            if request.method == "DELETE":
                del self.pods[key]
            return ok + (json.dumps(self.pods.get(key) or {}),)
        return status(404, "NotFound", "fake has no %s %s" % (request.method, path))


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(_kube.time, "sleep", lambda s: None)
    monkeypatch.setattr("ansible_collections.hpc.vcluster.plugins.module_utils._api.time.sleep", lambda s: None)


def kube(args, **kw):
    full = dict(api_url=API, token="kube-secret-token", name="nid000001")
    full.update(args)
    return run(kube_node.main, full, site=False, **kw)


def test_absent_drains_then_deletes_the_node(rsps):
    fake = FakeKube(rsps, pods=[pod("web"), pod("canal", ns="kube-system", owner="DaemonSet"),
                                pod("etcd", ns="kube-system", owner=None, mirror=True), pod("job", phase="Succeeded")])
    result = kube({"state": "absent"})
    assert result["changed"] and result["existed"]
    assert result["evicted"] == ["default/web"] and result["deleted_pods"] == ["default/job"]
    assert sorted(result["left"]) == ["kube-system/canal", "kube-system/etcd"]
    assert "nid000001" not in fake.nodes
    assert ("kube-system", "canal") in fake.pods  # DaemonSet pods stay until the node goes
    methods = [c for c in fake.calls if c[0] != "GET"]
    assert methods[0] == ("PATCH", "/api/v1/nodes/nid000001")  # cordoned before any eviction
    assert methods[-1] == ("DELETE", "/api/v1/nodes/nid000001")
    assert fake.auth == {"Bearer kube-secret-token"}
    assert "kube-secret-token" not in json.dumps(result)


def test_absent_again_changes_nothing(rsps):
    fake = FakeKube(rsps, nodes=())
    result = kube({"state": "absent"})
    assert not result["changed"] and not result["existed"]
    assert [c for c in fake.calls if c[0] != "GET"] == []


def test_check_mode_reports_and_touches_nothing(rsps):
    fake = FakeKube(rsps, pods=[pod("web")])
    result = kube({"state": "absent"}, check=True)
    assert result["changed"] and result["evicted"] == ["default/web"]
    assert result["diff"] == {"before": {"exists": True, "unschedulable": False},
                              "after": {"exists": False, "unschedulable": True}}
    assert [c for c in fake.calls if c[0] != "GET"] == []
    assert fake.nodes["nid000001"]["spec"] == {}


def test_disruption_budget_is_retried_until_it_allows(rsps):
    fake = FakeKube(rsps, pods=[pod("db")], budget_refusals=6)
    result = kube({"state": "drained"})
    assert result["evicted"] == ["default/db"] and not fake.pods
    assert fake.nodes["nid000001"]["spec"]["unschedulable"] is True


def test_disruption_budget_past_the_deadline_fails_naming_the_pod(rsps, monkeypatch):
    ticks = iter(range(0, 10000, 100))
    monkeypatch.setattr(_kube.time, "monotonic", lambda: next(ticks))
    FakeKube(rsps, pods=[pod("db")], budget_refusals=10 ** 6)
    with pytest.raises(Failed) as err:
        kube({"state": "drained", "timeout": 300})
    assert "default/db" in err.value.result["msg"] and "disruption budget" in err.value.result["msg"]


def test_unmanaged_and_emptydir_pods_are_refused_before_any_eviction(rsps):
    fake = FakeKube(rsps, pods=[pod("bare", owner=None), pod("cache", emptydir=True), pod("web")])
    with pytest.raises(Failed) as err:
        kube({"state": "drained"})
    msg = err.value.result["msg"]
    assert "default/bare: no controller" in msg and "default/cache: its emptyDir data" in msg
    assert not any(path.endswith("/eviction") for _m, path in fake.calls)
    assert ("default", "web") in fake.pods


def test_force_and_emptydir_allow_them(rsps):
    fake = FakeKube(rsps, pods=[pod("bare", owner=None), pod("cache", emptydir=True)])
    result = kube({"state": "drained", "force": True, "delete_emptydir_data": True})
    assert sorted(result["evicted"]) == ["default/bare", "default/cache"] and not fake.pods


def test_cordon_and_uncordon_are_idempotent(rsps):
    fake = FakeKube(rsps)
    assert kube({"state": "cordoned"})["changed"]
    assert not kube({"state": "cordoned"})["changed"]
    assert kube({"state": "schedulable"})["changed"]
    assert fake.nodes["nid000001"]["spec"]["unschedulable"] is False


def test_cordon_of_an_unknown_node_fails(rsps):
    FakeKube(rsps, nodes=())
    with pytest.raises(Failed) as err:
        kube({"state": "cordoned"})
    assert "not in the cluster" in err.value.result["msg"]


@pytest.mark.parametrize("args, needle", [
    ({"name": "Node_1"}, "Kubernetes node name"),
    ({"api_url": "ftp://k8s"}, "api_url must be an http(s) URL"),
    ({"api_url": "https://user:pw@k8s:6443"}, "without credentials"),
])
def test_bad_input_is_refused_before_any_call(rsps, args, needle):
    fake = FakeKube(rsps)
    with pytest.raises(Failed) as err:
        kube(args)
    assert needle in err.value.result["msg"] and fake.calls == []
    assert "user:pw" not in err.value.result["msg"]


def test_a_refused_token_is_named_without_quoting_it(rsps):
    rsps.add(rsps.GET, API + "/api/v1/nodes/nid000001", status=401, json={"kind": "Status", "message": "Unauthorized"})
    with pytest.raises(Failed) as err:
        kube({"state": "drained"})
    assert "401" in err.value.result["msg"] and "kube-secret-token" not in json.dumps(err.value.result)
