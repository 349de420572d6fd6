# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A vCluster's releases: what each successful (or failed) deploy, update and rollback left.

The records live on the site, in its S3 store (_s3.py), as ``<vcluster>/<seq>.json`` in the
release bucket: the controller may be an ephemeral AWX job, the site is what stays. A record
holds the manifest (secrets masked) and its digest, each node group's image with its digest,
the vServices with versions and sources, which release each node runs, what each node's
watched files and daemons hashed to (to tell drift from an unchanged node), who, when, the
operation and its result. This layer knows records and history; _s3.py knows HTTP.
"""
from __future__ import annotations

import datetime
import getpass
import json
import os
import re
import socket

from ansible_collections.hpc.vcluster.plugins.module_utils._s3 import S3_OPTION_ENV, S3Client, site_s3_credentials
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError, nonempty_env_fallback

RELEASE_API = "hpc.vcluster/release/v1"
DEFAULT_BUCKET = "vcluster-releases"
OPERATIONS = ("deploy", "update", "rollback", "reconcile")
RESULTS = ("success", "failed")
# What makes two records the same release (who and when do not).
CONTENT_KEYS = ("manifest_digest", "images", "vservices", "nodes", "fingerprints", "site_fingerprint", "result")
_ID = re.compile(r"^(?:([a-z][a-z0-9_]*)-)?0*([0-9]+)$")


def store_argument_spec():
    """The release store's options (doc fragment hpc.vcluster.release_store), each with its environment variable."""
    def env(*names):
        return (nonempty_env_fallback, list(names))

    return dict(
        s3_url=dict(type="str", fallback=env(*S3_OPTION_ENV["s3_url"])),
        s3_access_key=dict(type="str", no_log=False, fallback=env(*S3_OPTION_ENV["s3_access_key"])),
        s3_secret_key=dict(type="str", no_log=True, fallback=env(*S3_OPTION_ENV["s3_secret_key"])),
        s3_region=dict(type="str", fallback=env(*S3_OPTION_ENV["s3_region"])),
        release_bucket=dict(type="str", fallback=env("VCLUSTER_RELEASE_BUCKET")),
    )


class ReleaseStore(object):
    def __init__(self, s3, bucket):
        self.s3 = s3
        self.bucket = bucket

    @classmethod
    def for_module(cls, module):
        params = module.params
        clients = module.clients
        bucket = params.get("release_bucket") or DEFAULT_BUCKET
        return cls(S3Client(clients.transport, site_s3_credentials(clients, params)), bucket)

    @staticmethod
    def key(name, seq):
        return "%s/%06d.json" % (name, seq)

    def history(self, name):
        """Every record of vCluster ``name``, oldest first."""
        out = []
        for key in self.s3.keys(self.bucket, name + "/"):
            if not re.match(r"^%s/[0-9]{6}\.json$" % re.escape(name), key):
                continue
            body = self.s3.get(self.bucket, key)
            if body is None:
                continue
            try:
                out.append(json.loads(body.decode("utf-8")))
            except ValueError:
                raise SiteError("release record %s/%s is not JSON: fix or remove it" % (self.bucket, key))
        return sorted(out, key=lambda r: r.get("seq", 0))

    def write(self, record):
        body = json.dumps(record, sort_keys=True, indent=1).encode("utf-8")
        self.s3.put(self.bucket, self.key(record["vcluster"], record["seq"]), body)


def summary(record):
    """A record without its manifest content (what a history listing shows)."""
    if not record:
        return None
    return dict((k, v) for k, v in record.items() if k not in ("manifest", "fingerprints"))


def current(history):
    """The release the vCluster runs: the last one that succeeded."""
    done = [r for r in history if r.get("result") == "success"]
    return done[-1] if done else None


def previous(history):
    """Where a rollback goes by default: the last success before the latest record, with other content."""
    if not history:
        return None
    latest = history[-1]
    for record in reversed(history[:-1]):
        if record.get("result") == "success" and record.get("manifest_digest") != latest.get("manifest_digest"):
            return record
    return None


def select(history, ref, name):
    """The record ``ref`` names: ``previous``, ``current``, ``latest``, a sequence number or ``<name>-<seq>``."""
    if ref in ("previous", "current", "latest"):
        found = {"previous": previous, "current": current, "latest": lambda h: h[-1] if h else None}[ref](history)
        if found is None:
            raise SiteError("vCluster %s has no %s release (history: %s)" % (name, ref, _ids(history)))
        return found
    m = _ID.match(str(ref).strip())
    if not m or (m.group(1) and m.group(1) != name):
        raise SiteError("release %r: give previous, current, latest, a number or %s-<number>" % (ref, name))
    for record in history:
        if record.get("seq") == int(m.group(2)):
            return record
    raise SiteError("vCluster %s has no release %s (history: %s)" % (name, ref, _ids(history)))


def _ids(history):
    return ", ".join("%s (%s %s)" % (r.get("id"), r.get("operation"), r.get("result")) for r in history) or "empty"


def _content(record):
    out = dict((k, record.get(k)) for k in CONTENT_KEYS)
    out["site_fingerprint"] = record.get("site_fingerprint") or ""  # records from before it was kept have none
    out["nodes"] = dict((x, (n.get("node_group"), "self" if n.get("release") == record.get("seq") else n.get("release")))
                        for x, n in (record.get("nodes") or {}).items())
    return out


def same_content(a, b):
    """Whether two records describe the same release (a node on its own record's release counts as the same)."""
    return bool(a) and bool(b) and _content(a) == _content(b)


def default_who():
    """Who runs this: the controller's user and host, and the AWX job when there is one."""
    try:
        user = getpass.getuser()
    except Exception:  # getpass raises KeyError or OSError without a passwd entry (some containers)
        user = os.environ.get("USER", "")
    return {"user": user, "host": socket.gethostname(), "job": os.environ.get("JOB_ID") or os.environ.get("AWX_JOB_ID") or ""}


def make_record(name, seq, params, history, now=None):
    """The record a run leaves; ``params`` are the module's (operation, result, manifest, images, ...)."""
    before = history[-1] if history else None
    behind = set(params.get("nodes_behind") or [])
    nodes = {}
    for xname, group in sorted((params.get("nodes") or {}).items()):
        was = ((before or {}).get("nodes") or {}).get(xname) or {}
        nodes[xname] = {"node_group": group, "release": was.get("release", seq) if xname in behind else seq}
    who = dict(default_who())
    who.update(dict((k, v) for k, v in (params.get("who") or {}).items() if v))
    return {
        "apiVersion": RELEASE_API,
        "vcluster": name,
        "seq": seq,
        "id": "%s-%06d" % (name, seq),
        "operation": params["operation"],
        "result": params["result"],
        "created": (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "who": who,
        "manifest_digest": params["manifest_digest"],
        "manifest": params.get("manifest") or {},
        "images": params.get("images") or {},
        "vservices": params.get("vservices") or [],
        "nodes": nodes,
        "fingerprints": params.get("fingerprints") or {},
        "site_fingerprint": params.get("site_fingerprint") or "",
        "message": params.get("note") or "",
        "based_on": before["seq"] if before else None,
    }
