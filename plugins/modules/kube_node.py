#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kube_node
short_description: Cordon, drain or remove a worker node of a Kubernetes cluster through its API
version_added: "0.1.0"
description:
  - Takes a vCluster node out of the Kubernetes cluster it joined (Alpernetes), or puts it back in service, through
    the Kubernetes API only (no kubectl, no kubeconfig on the controller).
  - V(drained) marks the node unschedulable and evicts its pods as C(kubectl drain) does, through the Eviction API, so
    PodDisruptionBudgets are honoured (an eviction they refuse is retried until O(timeout)). DaemonSet and mirror
    pods stay; finished pods are deleted. Pods that no controller would recreate, and pods with C(emptyDir) data, are
    refused (the task fails, naming them) unless O(force) or O(delete_emptydir_data) allow them.
  - V(absent) drains the node, then deletes its Node object, so the cluster forgets it (RKE2 would otherwise keep its
    node-password secret and refuse a node of the same name later).
  - V(cordoned) only marks it unschedulable; V(schedulable) undoes that.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
attributes:
  check_mode:
    support: full
    description: Reads the node and its pods and reports which pods would be evicted or deleted.
  diff_mode:
    support: full
    description: Shows whether the node exists and is schedulable, before and after.
  platform:
    support: full
    platforms: controller
    description: Runs where the Kubernetes API is reachable, usually the controller.
options:
  name:
    description: The node's name in Kubernetes.
    type: str
    required: true
  state:
    description: What the node should be.
    type: str
    choices: [schedulable, cordoned, drained, absent]
    default: drained
  api_url:
    description:
      - Base URL of the Kubernetes API server, for example V(https://k8s.example.org:6443).
      - Falls back to the environment variable E(VCLUSTER_KUBE_API_URL).
    type: str
    required: true
  token:
    description:
      - Bearer token of an account allowed to patch and delete nodes, list and delete pods and create evictions.
      - Falls back to the environment variable E(VCLUSTER_KUBE_TOKEN).
    type: str
    required: true
  ca_path:
    description:
      - CA bundle that signed the API server's certificate. Falls back to E(VCLUSTER_KUBE_CA_PATH).
    type: path
  validate_certs:
    description: Check the API server's certificate.
    type: bool
    default: true
  timeout:
    description: Seconds a drain may take (evictions refused by disruption budgets, pods terminating).
    type: int
    default: 300
  grace_period:
    description: Seconds each evicted pod gets to stop; the pod's own setting when not given.
    type: int
  delete_emptydir_data:
    description: Evict pods that keep data in C(emptyDir) volumes (the data is lost).
    type: bool
    default: false
  force:
    description: Delete pods that no controller would recreate.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Drain a vCluster node and remove it from the Alpernetes cluster
  hpc.vcluster.kube_node:
    api_url: https://alpernetes.example.org:6443
    token: "{{ alpernetes_kube_token }}"
    ca_path: /etc/pki/alpernetes-ca.pem
    name: nid000001
    state: absent
    delete_emptydir_data: true
  delegate_to: localhost

- name: Cordon it for maintenance (API and token from VCLUSTER_KUBE_API_URL, VCLUSTER_KUBE_TOKEN)
  hpc.vcluster.kube_node:
    name: nid000001
    state: cordoned
  delegate_to: localhost
"""

RETURN = r"""
node:
  description: The node's name.
  returned: always
  type: str
  sample: nid000001
existed:
  description: Whether the cluster knew the node before the task.
  returned: always
  type: bool
  sample: true
evicted:
  description: The pods (namespace/name) evicted (would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [default/web-7d4b9c6f5-abcde]
deleted_pods:
  description: Finished pods deleted (would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: []
left:
  description: DaemonSet and mirror pods left on the node.
  returned: always
  type: list
  elements: str
  sample: [kube-system/rke2-canal-x7k2p]
"""

import re

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, HAS_REQUESTS, REQUESTS_IMPORT_ERROR
from ansible_collections.hpc.vcluster.plugins.module_utils._auth import StaticToken
from ansible_collections.hpc.vcluster.plugins.module_utils._endpoint import Endpoint, EndpointError
from ansible_collections.hpc.vcluster.plugins.module_utils._kube import DrainError, KubeClient, drain

NODE_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="drained", choices=["schedulable", "cordoned", "drained", "absent"]),
            api_url=dict(type="str", required=True, fallback=(env_fallback, ["VCLUSTER_KUBE_API_URL"])),
            token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["VCLUSTER_KUBE_TOKEN"])),
            ca_path=dict(type="path", fallback=(env_fallback, ["VCLUSTER_KUBE_CA_PATH"])),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=300),
            grace_period=dict(type="int"),
            delete_emptydir_data=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
    p = module.params
    if not re.match(NODE_NAME, p["name"]) or len(p["name"]) > 253:
        module.fail_json(msg="name must be a Kubernetes node name (a lower-case DNS name), got %r" % p["name"][:80])
    try:
        endpoint = Endpoint("Kubernetes API", p["api_url"], ca_path=p["ca_path"], validate_certs=p["validate_certs"])
        client = KubeClient(endpoint, StaticToken(p["token"], "token"))
        module.exit_json(**converge(client, p, module.check_mode))
    except (ApiError, EndpointError, DrainError) as exc:
        module.fail_json(msg=str(exc), node=p["name"])


def converge(client, p, check):
    name, state = p["name"], p["state"]
    node = client.node(name)
    result = dict(changed=False, node=name, existed=node is not None, evicted=[], deleted_pods=[], left=[])
    before = {"exists": node is not None, "unschedulable": bool(((node or {}).get("spec") or {}).get("unschedulable"))}
    after = dict(before)
    if node is None:
        if state in ("schedulable", "cordoned"):
            raise DrainError("node %s is not in the cluster (has it joined?)" % name)
        result["diff"] = {"before": before, "after": after}
        return result
    if state == "schedulable":
        after["unschedulable"] = False
    else:
        after["unschedulable"] = True
    if after["unschedulable"] != before["unschedulable"]:
        result["changed"] = True
        if not check:
            client.set_unschedulable(name, after["unschedulable"])
    if state in ("drained", "absent"):
        moved = drain(client, name, p["timeout"], p["delete_emptydir_data"], p["force"], p["grace_period"], check=check)
        result.update(evicted=moved["evicted"], deleted_pods=moved["deleted"], left=moved["left"])
        result["changed"] = result["changed"] or bool(moved["evicted"] or moved["deleted"])
    if state == "absent":
        after["exists"] = False
        result["changed"] = True
        if not check:
            client.delete_node(name)
    result["diff"] = {"before": before, "after": after}
    return result


if __name__ == "__main__":
    main()
