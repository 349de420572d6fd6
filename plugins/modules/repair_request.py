#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: repair_request
short_description: Record a request to repair a vCluster's node on the site
version_added: "0.3.0"
description:
  - Writes a repair request for a node that self-healing gave up on into the site's S3 store, beside the vCluster's
    release records (C(<bucket>/<vcluster>/repairs/<xname>-<time>.json)), where the infrastructure administrators and
    their tools find it whatever ran heal (an AWX job's container, for example).
  - 'The request (JSON, C(apiVersion: hpc.vcluster/repair/v1)) holds the vCluster, the node and its host, what was
    found failed, what failed at each attempt to bring it back, its recent logs, whether it was taken out of the
    vCluster, who asked and when. The hpc.vcluster.vcluster role''s repair_request step calls this module and sends
    the request to the notification hook.'
  - Every call is a new request (changed).
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
  - hpc.vcluster.release_store
attributes:
  check_mode:
    support: full
    description: Returns the request it would write, and writes nothing.
  diff_mode:
    support: none
    description: A new request has nothing to compare with.
  platform:
    support: full
    platforms: controller
    description: Runs where the site's S3 store is reachable, usually the controller.
options:
  name:
    description:
      - The vCluster (its label).
    type: str
    required: true
  node:
    description:
      - The node's xname.
    type: str
    required: true
  host:
    description:
      - The node's host name in the inventory.
    type: str
    default: ""
  found:
    description:
      - What was found failed (power, management plane, Slurm).
    type: list
    elements: str
    default: []
  errors:
    description:
      - What failed at each attempt to bring the node back.
    type: list
    elements: str
    default: []
  logs:
    description:
      - Recent log lines (the node's journal when it answered, the Slurm controller's lines about it).
    type: list
    elements: str
    default: []
  removed:
    description:
      - Whether the node was taken out of the vCluster.
    type: bool
    default: true
  who:
    description:
      - Who asked (C(user), C(job)); the controller's user, host and AWX job fill what is not given.
    type: dict
    default: {}
seealso:
  - module: hpc.vcluster.vcluster_release
"""

EXAMPLES = r"""
- name: Ask for the repair of a dead node
  hpc.vcluster.repair_request:
    name: eiger
    node: x1000c0s5b0n0
    host: nid000006
    found: ["power: off", "management plane: state Standby"]
    errors: ["attempt 1: Power on the others: x1000c0s5b0n0: failed"]
    logs: []
  delegate_to: localhost
  register: repair
"""

RETURN = r"""
request:
  description: The request as written (or as it would be, in check mode).
  returned: always
  type: dict
  sample: {apiVersion: hpc.vcluster/repair/v1, vcluster: eiger, node: x1000c0s5b0n0, time: "2026-12-03T00:10:00Z"}
key:
  description: Where it is, C(<bucket>/<key>).
  returned: always
  type: str
  sample: vcluster-releases/eiger/repairs/x1000c0s5b0n0-20261203T001000Z.json
written:
  description: Whether it was written (false in check mode).
  returned: always
  type: bool
"""

import datetime
import json

from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._releases import ReleaseStore, default_who, store_argument_spec

REPAIR_API = "hpc.vcluster/repair/v1"


def make_request(params, now=None):
    """The request's JSON document, and its key in the release bucket."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    key = "%s/repairs/%s-%s.json" % (params["name"], params["node"], now.strftime("%Y%m%dT%H%M%SZ"))
    who = dict(default_who())
    who.update(dict((k, v) for k, v in (params.get("who") or {}).items() if v))
    request = {
        "apiVersion": REPAIR_API,
        "vcluster": params["name"],
        "node": params["node"],
        "host": params.get("host") or "",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "found": list(params.get("found") or []),
        "errors": list(params.get("errors") or []),
        "logs": list(params.get("logs") or []),
        "removed": bool(params.get("removed")),
        "who": who,
    }
    return request, key


def run_module(module):
    params = module.params
    module.access.check_labels([params["name"]])
    store = ReleaseStore.for_module(module)
    request, key = make_request(params)
    request["key"] = "%s/%s" % (store.bucket, key)
    if not module.check_mode:
        store.s3.put(store.bucket, key, json.dumps(request, sort_keys=True, indent=1).encode("utf-8"))
    return {"changed": True, "request": request, "key": request["key"], "written": not module.check_mode}


def main():
    argument_spec = store_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        node=dict(type="str", required=True),
        host=dict(type="str", default=""),
        found=dict(type="list", elements="str", default=[]),
        errors=dict(type="list", elements="str", default=[]),
        logs=dict(type="list", elements="str", default=[]),
        removed=dict(type="bool", default=True),
        who=dict(type="dict", default={}),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True)
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
