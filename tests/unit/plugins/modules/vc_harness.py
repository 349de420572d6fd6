"""Running a module's main() in-process, and a small stateful SMD stand-in built on `responses`.

`run(main, args, check=..., diff=...)` returns the module's result dict, or raises
`Failed` with the failure result. The SMD fake answers like the real services (201 with
`[{"URI": ...}]`, 409 Problem7807 for exclusive conflicts, 405 for the bulk member PUT on
CSM) and records every call, so tests can assert on what was (not) sent.
"""
import hashlib
import json
import re
from urllib.parse import parse_qs, urlparse

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

URL = "https://site.example"
PREFIX = {"openchami": "/hsm/v2", "csm": "/apis/smd/hsm/v2"}


class Exited(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class Failed(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def run(main, args, check=False, diff=True, kind="openchami", site=True):
    full = dict(args)
    if site:
        full.setdefault("site_kind", kind)
        full.setdefault("api_url", URL)
        full.setdefault("token", "test-token")
    full["_ansible_check_mode"] = check
    full["_ansible_diff"] = diff

    seen_warnings = []

    def warn(self, warning):
        seen_warnings.append(warning)

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        kwargs["warnings"] = list(seen_warnings)
        raise Exited(kwargs)

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        raise Failed(kwargs)

    with patch_module_args(full):
        orig = basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json, basic.AnsibleModule.warn
        basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json, basic.AnsibleModule.warn = exit_json, fail_json, warn
        try:
            main()
        except Exited as done:
            return done.result
        finally:
            basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json, basic.AnsibleModule.warn = orig
    raise AssertionError("the module neither exited nor failed")


def problem(status, title, detail):
    return (status, {"Content-Type": "application/problem+json"},
            json.dumps({"type": "about:blank", "title": title, "detail": detail, "status": status}))


class FakeSmd:
    """Groups, members, components and memberships of one SMD, on top of `responses`."""

    def __init__(self, rsps, kind="openchami", nodes=4):
        self.kind = kind
        self.base = URL + PREFIX[kind]
        self.components = [{"ID": "x1000c0s%db0n0" % i, "Type": "Node", "State": "Ready", "Flag": "OK",
                            "Enabled": True, "Role": "Compute", "NID": i + 1, "Arch": "X86", "Class": "Mountain"}
                           for i in range(nodes)]
        self.groups = {}
        self.writes = []
        rx = re.compile(re.escape(self.base) + r"/.*")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            rsps.add_callback(method, rx, callback=self._dispatch)

    def add_group(self, label, members=(), exclusive="", description="", tags=()):
        self.groups[label] = {"label": label, "description": description, "tags": list(tags),
                              "exclusiveGroup": exclusive, "members": {"ids": sorted(members)}}

    def _group_out(self, g):
        out = {"label": g["label"], "description": g["description"], "members": {"ids": sorted(g["members"]["ids"])}}
        if g["tags"]:
            out["tags"] = g["tags"]
        if g["exclusiveGroup"]:
            out["exclusiveGroup"] = g["exclusiveGroup"]
        return out

    def _conflict(self, label, xname):
        excl = self.groups[label]["exclusiveGroup"]
        if not excl:
            return False
        return any(o["exclusiveGroup"] == excl and xname in o["members"]["ids"]
                   for l, o in self.groups.items() if l != label)

    def _dispatch(self, request):
        url = urlparse(request.url)
        path = url.path[len(urlparse(self.base).path):]
        query = parse_qs(url.query)
        body = json.loads(request.body) if request.body else None
        method = request.method
        if method != "GET" and not path.endswith("/Query"):  # the query POSTs read
            self.writes.append((method, path, body))
        ok = (200, {"Content-Type": "application/json"})
        if path == "/State/Components/Query" and method == "POST":
            ids = set(body["ComponentIDs"])
            comps = [c for c in self.components if c["ID"] in ids and c["Type"] in body.get("type", [c["Type"]])]
            return ok + (json.dumps({"Components": comps}),)
        if path == "/State/Components/ByNID/Query" and method == "POST":
            nids = set()
            for item in body["NIDRanges"]:
                bounds = [int(n) for n in item.split("-")]
                nids.update(range(bounds[0], bounds[-1] + 1))
            return ok + (json.dumps({"Components": [c for c in self.components if c["NID"] in nids]}),)
        if path == "/State/Components" and method == "GET":
            comps = self.components
            if "id" in query:
                comps = [c for c in comps if c["ID"] in query["id"]]
            if "nid" in query:
                comps = [c for c in comps if str(c["NID"]) in query["nid"]]
            for key, field in (("role", "Role"), ("arch", "Arch"), ("state", "State")):
                if key in query:
                    comps = [c for c in comps if c[field].lower() in [v.lower() for v in query[key]]]
            return ok + (json.dumps({"Components": comps}),)
        if path == "/Inventory/EthernetInterfaces" and method == "GET":
            out = [{"ID": "02000000%04x" % c["NID"], "MACAddress": "02:00:00:00:%02x:%02x" % (c["NID"] // 256, c["NID"] % 256),
                    "ComponentID": c["ID"], "Type": "Node", "Description": "nid%06d" % c["NID"] if c["NID"] % 2 else "",
                    "IPAddresses": [{"IPAddress": "10.252.1.%d" % c["NID"], "Network": "NMN"}]} for c in self.components]
            return ok + (json.dumps(out),)
        if path == "/memberships" and method == "GET":
            ids = query.get("id") or [c["ID"] for c in self.components]
            out = [{"id": x, "groupLabels": sorted(l for l, g in self.groups.items() if x in g["members"]["ids"]),
                    "partitionName": ""} for x in ids if any(c["ID"] == x for c in self.components)]
            return ok + (json.dumps(out),)
        if path == "/groups" and method == "GET":
            labels = query.get("group")
            out = [self._group_out(g) for l, g in sorted(self.groups.items()) if not labels or l in labels]
            return ok + (json.dumps(out),)
        if path == "/groups" and method == "POST":
            label = body["label"]
            if label in self.groups:
                return problem(409, "Conflict", "operation would conflict with an existing group that has the same label")
            self.add_group(label, [], body.get("exclusiveGroup", ""), body.get("description", ""), body.get("tags", []))
            for x in body["members"]["ids"]:
                if self._conflict(label, x):
                    del self.groups[label]
                    return problem(409, "Conflict", "operation would conflict with an existing member in another exclusive group.")
                self.groups[label]["members"]["ids"].append(x)
            return (201, {"Content-Type": "application/json"}, json.dumps([{"URI": PREFIX["openchami"] + "/groups/" + label}]))
        m = re.match(r"^/groups/([^/]+)$", path)
        if m:
            label = m.group(1)
            if label not in self.groups:
                return problem(404, "Not Found", "No such group: %s" % label)
            if method == "GET":
                return ok + (json.dumps(self._group_out(self.groups[label])),)
            if method == "PATCH":
                self.groups[label].update((k, v) for k, v in body.items() if k in ("description", "tags"))
                return (204, {}, "")
            if method == "DELETE":
                del self.groups[label]
                return ok + (json.dumps({"code": 0, "message": "deleted 1 entry"}),)
        m = re.match(r"^/groups/([^/]+)/members$", path)
        if m:
            label = m.group(1)
            if label not in self.groups:
                return problem(404, "Not Found", "No such group: %s" % label)
            if method == "PUT":
                if self.kind == "csm":
                    return (405, {"Content-Type": "application/problem+json", "allow": "GET, POST"},
                            json.dumps({"type": "about:blank", "title": "Method Not Allowed", "status": 405}))
                for x in body["ids"]:
                    if self._conflict(label, x):
                        return problem(409, "Conflict", "operation would conflict with an existing member in another exclusive group.")
                self.groups[label]["members"]["ids"] = sorted(body["ids"])
                return (201, {"Content-Type": "application/json"}, "[]")
            if method == "POST":
                x = body["id"]
                if self._conflict(label, x):
                    return problem(409, "Conflict", "operation would conflict with an existing member in another exclusive group.")
                self.groups[label]["members"]["ids"].append(x)
                return (201, {"Content-Type": "application/json"}, "[]")
        m = re.match(r"^/groups/([^/]+)/members/([^/]+)$", path)
        if m and method == "DELETE":
            label, x = m.groups()
            self.groups[label]["members"]["ids"].remove(x)
            return ok + (json.dumps({"code": 0, "message": "deleted 1 entry"}),)
        return problem(404, "Not Found", "fake SMD has no %s %s" % (method, path))


BSS_PREFIX = {"openchami": "/boot/v1", "csm": "/apis/bss/boot/v1"}
PCS_PREFIX = {"openchami": "/power-control/v1", "csm": "/apis/power-control/v1"}


class FakeBss:
    """BSS boot parameters, one entry per host (the etcd shape) or aggregated (the SQL shape)."""

    def __init__(self, rsps, kind="openchami", aggregate=True):
        self.url = URL + BSS_PREFIX[kind] + "/bootparameters"
        self.hosts = {}
        self.aggregate = aggregate
        self.writes = []
        for method in ("GET", "PUT", "PATCH", "POST", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(self.url) + r"(\?.*)?$"), callback=self._dispatch)

    def _dispatch(self, request):
        body = json.loads(request.body) if request.body else None
        if request.method == "GET":
            names = None
            query = parse_qs(urlparse(request.url).query)
            if "name" in query:
                names = set(n for v in query["name"] for n in v.split(","))
            elif body and body.get("hosts"):  # BSS filters on a BootParams body too
                names = set(body["hosts"])
            hosts = dict((h, t) for h, t in self.hosts.items() if names is None or h in names)
            if names is not None and not hosts:
                return problem(404, "Not Found", "Cannot find boot parameters for requested Hosts")
            if not self.hosts:
                return (200, {"Content-Type": "application/json"}, "null")
            entries = []
            if self.aggregate:
                by = {}
                for h, t in sorted(hosts.items()):
                    by.setdefault((t["kernel"], t["initrd"], t["params"]), []).append(h)
                for (k, i, p), hs in by.items():
                    entries.append({"hosts": hs, "kernel": k, "initrd": i, "params": p,
                                    "cloud-init": {"meta-data": None, "user-data": None, "phone-home": {}}})
            else:
                entries = [dict(t, hosts=[h]) for h, t in sorted(hosts.items())]
            return (200, {"Content-Type": "application/json"}, json.dumps(entries))
        self.writes.append((request.method, body))
        if request.method == "PUT":
            for h in body["hosts"]:
                self.hosts[h] = {"kernel": body.get("kernel", ""), "initrd": body.get("initrd", ""),
                                 "params": body.get("params", "")}
            return (200, {}, "")
        if request.method == "DELETE":
            for h in body["hosts"]:
                self.hosts.pop(h, None)
            return (200, {}, "")
        return problem(405, "Method Not Allowed", "fake")


class FakePcs:
    """PCS power status and transitions; a transition completes after `polls` GETs."""

    def __init__(self, rsps, kind="openchami", power=None, polls=1, fail=()):
        self.base = URL + PCS_PREFIX[kind]
        self.power = dict(power or {})
        self.polls = polls
        self.fail = set(fail)
        self.transitions = {}
        self.posted = []
        rsps.add_callback("POST", self.base + "/power-status", callback=self._status)
        rsps.add_callback("POST", self.base + "/transitions", callback=self._post)
        rsps.add_callback("GET", re.compile(re.escape(self.base) + r"/transitions/[^/]+$"), callback=self._get)

    def _status(self, request):
        out = []
        for x in json.loads(request.body).get("xname", []):
            if x in self.power:
                out.append({"xname": x, "powerState": self.power[x], "managementState": "available", "error": "",
                            "supportedPowerTransitions": ["On", "Off"], "lastUpdated": ""})
            else:
                out.append({"xname": x, "powerState": "undefined", "managementState": "unavailable",
                            "error": "Component not found in component map.", "supportedPowerTransitions": []})
        return (200, {"Content-Type": "application/json"}, json.dumps({"status": out}))

    def _post(self, request):
        body = json.loads(request.body)
        tid = "3fa85f64-5717-4562-b3fc-2c963f66af%02d" % len(self.transitions)
        self.posted.append(body)
        self.transitions[tid] = {"body": body, "gets": 0}
        return (200, {"Content-Type": "application/json"},
                json.dumps({"transitionID": tid, "operation": body["operation"].title()}))

    def _get(self, request):
        tid = request.url.rsplit("/", 1)[1]
        t = self.transitions[tid]
        t["gets"] += 1
        xnames = [loc["xname"] for loc in t["body"]["location"]]
        done = t["gets"] >= self.polls
        tasks, counts = [], {"total": len(xnames), "new": 0, "in-progress": 0, "failed": 0, "succeeded": 0,
                             "un-supported": 0}
        for x in xnames:
            if not done:
                status = "in-progress"
            elif x in self.fail:
                status = "failed"
            else:
                status = "succeeded"
                op = t["body"]["operation"]
                self.power[x] = "off" if "off" in op else "on"
            counts[status] += 1
            tasks.append({"xname": x, "taskStatus": status,
                          "taskStatusDescription": "Failed to achieve transition" if status == "failed" else "ok",
                          "error": "BMC unreachable" if status == "failed" else ""})
        return (200, {"Content-Type": "application/json"}, json.dumps({
            "transitionID": tid, "operation": t["body"]["operation"].title(),
            "transitionStatus": "completed" if done else "in-progress", "taskCounts": counts, "tasks": tasks}))


class FakeS3:
    """Path-style S3 under http://s3.test/store that checks each request's signature with sign_v4."""

    def __init__(self, rsps, secret="sk", page=2):
        self.buckets, self.secret, self.page = {}, secret, page
        self.requests = []
        rsps.add_callback("PUT", re.compile(r"http://s3\.test/store/.*"), callback=self._put)
        rsps.add_callback("GET", re.compile(r"http://s3\.test/store/.*"), callback=self._get)

    def _check(self, request):
        headers = dict(request.headers)
        auth = headers.pop("Authorization")
        names = re.search(r"SignedHeaders=([^,]+)", auth).group(1).split(";")
        signed = dict((k, v) for k, v in headers.items() if k.lower() in names)
        signed.setdefault("Host", "s3.test")
        body = request.body or b""
        assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
        from ansible_collections.hpc.vcluster.plugins.module_utils._s3 import sign_v4
        assert auth == sign_v4(request.method, request.url, signed, headers["x-amz-content-sha256"], "ak",
                               self.secret, "us-east-1", headers["x-amz-date"])
        self.requests.append((request.method, request.url))

    def _put(self, request):
        self._check(request)
        path = request.url.split("/store/", 1)[1]
        bucket, key = (path.split("/", 1) + [""])[:2]
        if not key:
            if bucket in self.buckets:
                return (409, {}, "<Error><Code>BucketAlreadyOwnedByYou</Code></Error>")
            self.buckets[bucket] = {}
            return (200, {}, "")
        if bucket not in self.buckets:
            return (404, {}, "<Error><Code>NoSuchBucket</Code></Error>")
        self.buckets[bucket][key] = request.body
        return (200, {"ETag": '"abc"'}, "")

    def _get(self, request):
        self._check(request)
        path, query = (request.url.split("/store/", 1)[1].split("?", 1) + [""])[:2]
        bucket, key = (path.split("/", 1) + [""])[:2]
        if bucket not in self.buckets:
            return (404, {}, "<Error><Code>NoSuchBucket</Code></Error>")
        if key:
            body = self.buckets[bucket].get(key)
            return (200, {}, body) if body is not None else (404, {}, "<Error><Code>NoSuchKey</Code></Error>")
        params = dict(p.split("=", 1) for p in query.split("&"))
        keys = sorted(k for k in self.buckets[bucket] if k.startswith(params.get("prefix", "").replace("%2F", "/")))
        start = int(params.get("continuation-token", "0"))
        chunk = keys[start:start + self.page]
        more = start + self.page < len(keys)
        ns = "http://s3.amazonaws.com/doc/2006-03-01/"
        xml = '<ListBucketResult xmlns="%s">%s<IsTruncated>%s</IsTruncated>%s</ListBucketResult>' % (
            ns, "".join("<Contents><Key>%s</Key></Contents>" % k for k in chunk), "true" if more else "false",
            "<NextContinuationToken>%d</NextContinuationToken>" % (start + self.page) if more else "")
        return (200, {"Content-Type": "application/xml"}, xml)
