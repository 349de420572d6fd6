#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: vcluster_release
short_description: Record a vCluster's release on the site
version_added: "0.2.0"
description:
  - Writes a release record of a vCluster into the site's S3 store (MinIO on OpenCHAMI, RGW on CSM), where it outlives
    the controller that ran the deploy, update or rollback (an AWX job's container, for example).
  - A record holds the manifest with its secrets masked and the digest of the manifest as written, each node group's
    image with its digest, the vServices with their versions and sources, which release each node runs, what each
    node's watched files and daemons hashed to, who ran it, when, the operation and its result.
  - Records are numbered per vCluster (C(<vcluster>-000001), ...). When the latest record already describes the same
    release (same manifest digest, images, vServices, nodes, fingerprints, site fingerprint and result), nothing is
    written, so a re-run that changes nothing reports no change.
  - With O(site_state), the record also holds the hash of what the site holds for the vCluster after the run (its
    label's members, the members' boot parameters and power states, its VLAN), which M(hpc.vcluster.vcluster_plan)
    compares at the next run.
  - M(hpc.vcluster.vcluster_info) reads them back; the hpc.vcluster.vcluster role's release step calls this module.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
  - hpc.vcluster.release_store
attributes:
  check_mode:
    support: full
    description: Returns the record it would write, and writes nothing.
  diff_mode:
    support: full
    description: Shows the latest record's summary before and the new one after.
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API and S3 store are reachable, usually the controller.
options:
  name:
    description:
      - The vCluster (its label).
    type: str
    required: true
  operation:
    description:
      - What made this release.
    type: str
    choices: [deploy, update, rollback, reconcile]
    required: true
  result:
    description:
      - How it ended. A failed update records where each node is (O(nodes_behind)).
    type: str
    choices: [success, failed]
    default: success
  manifest:
    description:
      - The manifest with its secrets masked (the C(masked) result of M(hpc.vcluster.vcluster_manifest)).
    type: dict
    required: true
  manifest_digest:
    description:
      - The digest of the manifest as written (the C(digest) result of M(hpc.vcluster.vcluster_manifest)).
    type: str
    required: true
  images:
    description:
      - Each node group's image, C({name, tag, ref, digest}), by node group.
    type: dict
    default: {}
  vservices:
    description:
      - The vServices, each C({name, version, source}).
    type: list
    elements: dict
    default: []
  nodes:
    description:
      - The members, each mapped to its node group (xname to node group name).
    type: dict
    default: {}
  nodes_behind:
    description:
      - Members that still run the previous release (the rest of a failed update); their record keeps the release
        they had.
    type: list
    elements: str
    default: []
  fingerprints:
    description:
      - What each node's watched files and daemons hashed to after the run, by host name.
    type: dict
    default: {}
  who:
    description:
      - Who ran it (C(user), C(host), C(job)); missing fields are the controller's user, host and AWX job id (E(JOB_ID)).
    type: dict
    default: {}
  note:
    description:
      - A line for the history (what changed, which nodes failed); the record's C(message).
    type: str
    default: ""
  site_state:
    description:
      - Read what the site holds for the vCluster (the label's members, the boot parameters and power states of the
        nodes of O(nodes), the VLAN of the manifest's C(network)) and record its hash as C(site_fingerprint).
    type: bool
    default: false
seealso:
  - module: hpc.vcluster.vcluster_info
"""

EXAMPLES = r"""
- name: Validate the manifest
  hpc.vcluster.vcluster_manifest:
    path: vclusters/eiger.yml
  register: manifest

- name: Record the release
  hpc.vcluster.vcluster_release:
    name: eiger
    operation: deploy
    manifest: "{{ manifest.masked }}"
    manifest_digest: "{{ manifest.digest }}"
    images: {compute: {name: compute-base, tag: "2026.11", digest: "sha256:cf13fc7e"}}
    vservices: [{name: slurm, version: "1.0"}]
    nodes: {x1000c0s0b0n0: compute}
  delegate_to: localhost
"""

RETURN = r"""
release:
  description: The record written (or, when nothing changed, the latest one).
  returned: always
  type: dict
  sample: {id: eiger-000003, seq: 3, operation: update, result: success, manifest_digest: "sha256:9f2c..."}
written:
  description: Whether a new record was written (would be, in check mode).
  returned: always
  type: bool
history_length:
  description: How many records the vCluster has after the task.
  returned: always
  type: int
"""

from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._releases import (
    OPERATIONS, RESULTS, ReleaseStore, make_record, same_content, store_argument_spec, summary)
from ansible_collections.hpc.vcluster.plugins.module_utils._site_state import fingerprint, site_state


def run_module(module):
    params = module.params
    module.access.check_labels([params["name"]])
    if params["site_state"]:
        params = dict(params, site_fingerprint=fingerprint(site_state(
            module.clients, params["name"], module.clients.smd.group(params["name"]), list(params["nodes"]),
            params["manifest"].get("network"))))
    store = ReleaseStore.for_module(module)
    history = store.history(params["name"])
    seq = (history[-1]["seq"] + 1) if history else 1
    record = make_record(params["name"], seq, params, history)
    latest = history[-1] if history else None
    if same_content(latest, record):
        return {"changed": False, "release": latest, "written": False, "history_length": len(history)}
    if not module.check_mode:
        store.write(record)
    result = {"changed": True, "release": record, "written": True, "history_length": len(history) + 1}
    result.update(module.diff_result(summary(latest) or {}, summary(record)))
    return result


def main():
    argument_spec = store_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        operation=dict(type="str", required=True, choices=list(OPERATIONS)),
        result=dict(type="str", default="success", choices=list(RESULTS)),
        manifest=dict(type="dict", required=True),
        manifest_digest=dict(type="str", required=True),
        images=dict(type="dict", default={}),
        vservices=dict(type="list", elements="dict", default=[]),
        nodes=dict(type="dict", default={}),
        nodes_behind=dict(type="list", elements="str", default=[]),
        fingerprints=dict(type="dict", default={}),
        who=dict(type="dict", default={}),
        note=dict(type="str", default=""),
        site_state=dict(type="bool", default=False),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True)
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
