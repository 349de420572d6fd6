# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes API, as much as taking a worker out of a cluster needs: cordon, drain, delete.

Drain does what ``kubectl drain`` does, through the API, so the controller needs neither
kubectl nor a kubeconfig: mark the node unschedulable, leave DaemonSet and mirror pods,
evict every other pod through the Eviction API (which honours PodDisruptionBudgets; a 429
means "not now" and is retried until the deadline), delete finished pods, then wait until
the evicted pods are gone. Pods that no controller would recreate, and pods with emptyDir
data, are refused unless the caller allows them, as kubectl does.
"""
from __future__ import annotations

import time

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, Transport, decode_json

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


class DrainError(Exception):
    """A drain cannot go on; the message says which pods and why."""


def _sleep(seconds):
    time.sleep(seconds)


def _clock():
    return time.monotonic()


class KubeClient(object):
    """Nodes and pods of one Kubernetes API server."""

    def __init__(self, endpoint, token_source, sleep=None, clock=None):
        self.endpoint = endpoint
        # looked up at each call (not bound here), so tests can replace time.sleep
        self._sleep = sleep or _sleep
        self._clock = clock or _clock
        self.transport = Transport(endpoint, token_source, sleep=self._sleep)

    def _call(self, method, path, **kwargs):
        return self.transport.request(method, self.endpoint.url(path), service="kubernetes", **kwargs)

    def node(self, name):
        """The node object, or None when the cluster has no such node."""
        reply = self._call("GET", "/api/v1/nodes/%s" % name, expect=(200, 404))
        return decode_json(reply, "kubernetes") if reply.status_code == 200 else None

    def set_unschedulable(self, name, value):
        self._call("PATCH", "/api/v1/nodes/%s" % name, json_body={"spec": {"unschedulable": bool(value)}},
                   headers=MERGE_PATCH)

    def delete_node(self, name):
        self._call("DELETE", "/api/v1/nodes/%s" % name, expect=(200, 202, 404))

    def pods_on(self, name):
        reply = self._call("GET", "/api/v1/pods", params={"fieldSelector": "spec.nodeName=%s" % name})
        return (decode_json(reply, "kubernetes") or {}).get("items") or []

    def pod_uid(self, namespace, pod):
        reply = self._call("GET", "/api/v1/namespaces/%s/pods/%s" % (namespace, pod), expect=(200, 404))
        return ((decode_json(reply, "kubernetes") or {}).get("metadata") or {}).get("uid") if reply.status_code == 200 else None

    def evict(self, namespace, pod, grace_period=None):
        """True when the eviction was accepted, False when a disruption budget says not now (429)."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}}
        if grace_period is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace_period}
        reply = self._call("POST", "/api/v1/namespaces/%s/pods/%s/eviction" % (namespace, pod), json_body=body,
                           expect=(200, 201, 404, 429))
        return reply.status_code != 429

    def delete_pod(self, namespace, pod):
        self._call("DELETE", "/api/v1/namespaces/%s/pods/%s" % (namespace, pod), expect=(200, 202, 404))


def classify(pods, delete_emptydir_data=False, force=False):
    """Split a node's pods into (to evict, to delete, left alone, refused with a reason)."""
    evict, delete, left, refused = [], [], [], []
    for pod in pods:
        meta = pod.get("metadata") or {}
        ident = "%s/%s" % (meta.get("namespace", "default"), meta.get("name", "?"))
        owners = meta.get("ownerReferences") or []
        controller = [o for o in owners if o.get("controller")]
        phase = (pod.get("status") or {}).get("phase")
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            left.append(ident)
        elif any(o.get("kind") == "DaemonSet" for o in controller):
            left.append(ident)
        elif phase in ("Succeeded", "Failed"):
            delete.append(pod)
        elif not controller and not force:
            refused.append((ident, "no controller would recreate it (force allows it)"))
        elif any("emptyDir" in v for v in (pod.get("spec") or {}).get("volumes") or []) and not delete_emptydir_data:
            refused.append((ident, "its emptyDir data would be lost (delete_emptydir_data allows it)"))
        else:
            evict.append(pod)
    return evict, delete, left, refused


def _key(pod):
    meta = pod["metadata"]
    return meta.get("namespace", "default"), meta["name"], meta.get("uid")


def drain(client, name, timeout, delete_emptydir_data=False, force=False, grace_period=None, check=False):
    """Evict the node's pods; returns {"evicted": [...], "deleted": [...], "left": [...]}.

    The node must already be unschedulable (or ``check``). Raises DrainError when pods are
    refused or the deadline passes.
    """
    evict, delete, left, refused = classify(client.pods_on(name), delete_emptydir_data, force)
    if refused:
        raise DrainError("cannot drain %s: %s" % (name, "; ".join("%s: %s" % r for r in refused)))
    result = {"evicted": ["%s/%s" % _key(p)[:2] for p in evict], "deleted": ["%s/%s" % _key(p)[:2] for p in delete],
              "left": left}
    if check:
        return result
    for pod in delete:
        ns, pod_name, _uid = _key(pod)
        client.delete_pod(ns, pod_name)
    deadline = client._clock() + timeout
    pending = [_key(p) for p in evict]
    while pending:
        blocked = []
        for ns, pod_name, uid in pending:
            if not client.evict(ns, pod_name, grace_period):
                blocked.append((ns, pod_name, uid))
        if not blocked:
            break
        if client._clock() >= deadline:
            raise DrainError("cannot drain %s within %ss: the disruption budgets of %s do not allow an eviction" % (
                name, timeout, ", ".join("%s/%s" % b[:2] for b in blocked)))
        client._sleep(5)
        pending = blocked
    waiting = [_key(p) for p in evict]
    while waiting:
        waiting = [(ns, pod_name, uid) for ns, pod_name, uid in waiting if client.pod_uid(ns, pod_name) == uid]
        if not waiting:
            break
        if client._clock() >= deadline:
            raise DrainError("pods %s of %s were evicted but have not gone within %ss" % (
                ", ".join("%s/%s" % w[:2] for w in waiting), name, timeout))
        client._sleep(2)
    return result


__all__ = ["ApiError", "DrainError", "KubeClient", "classify", "drain"]
