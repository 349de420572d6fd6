#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_init
short_description: Set the cloud-init data of a label (OpenCHAMI cloud-init server)
version_added: "0.1.0"
description:
  - Sets the cloud-config and meta-data the OpenCHAMI cloud-init server gives every member of a label.
  - The server keys group data by SMD label, and a node reads the data of every label it is in, so a node that later
    joins the label gets the same bootstrap without running this module again.
  - Only on OpenCHAMI. CSM has no cloud-init admin API (its nodes are configured by CFS after boot); on a CSM site the
    module fails and says so.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
attributes:
  check_mode:
    support: full
    description: Reports whether the group data would be created, replaced or deleted.
  diff_mode:
    support: full
    description: Shows the group's description, meta-data and cloud-config before and after.
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API is reachable, usually the controller.
options:
  label:
    description:
      - The label (SMD group) whose members get the data. A warning says so when SMD has no such label, since nodes
        would never match it.
    type: str
    required: true
  state:
    description:
      - V(present) creates or replaces the group data; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Description of the group data.
    type: str
    default: ""
  meta_data:
    description:
      - Meta-data for the members (the server's C(meta-data) key), visible to cloud-init templates as
        C(vendor_data.groups[<label>]).
    type: dict
    default: {}
  cloud_config:
    description:
      - The cloud-config as a mapping; written as C(#cloud-config) followed by the mapping.
      - Mutually exclusive with O(user_data).
    type: dict
  user_data:
    description:
      - "The cloud-config (or a Jinja template, whose first line is C(## template: jinja)) as text."
      - Mutually exclusive with O(cloud_config).
    type: str
  encoding:
    description:
      - How the server stores the content. V(base64) keeps it opaque to the admin API; what nodes get is the same.
    type: str
    choices: [plain, base64]
    default: plain
seealso:
  - module: hpc.vcluster.node_group
"""

EXAMPLES = r"""
- name: Bootstrap of every node of vc_blue
  hpc.vcluster.cloud_init:
    label: vc_blue
    description: vCluster blue bootstrap
    meta_data:
      syslog_aggregator: 10.252.0.10
    cloud_config:
      write_files:
        - path: /etc/vcluster
          content: "blue\n"
      runcmd:
        - [systemctl, restart, chronyd]
  delegate_to: localhost

- name: Remove it when the vCluster is released
  hpc.vcluster.cloud_init:
    label: vc_blue
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
group:
  description: The group data after the task (empty when absent), with the cloud-config decoded.
  returned: always
  type: dict
  contains:
    name:
      description: Group name (the label).
      type: str
      sample: vc_blue
    description:
      description: Description.
      type: str
      sample: vCluster blue bootstrap
    meta_data:
      description: Meta-data.
      type: dict
      sample: {syslog_aggregator: 10.252.0.10}
    user_data:
      description: The cloud-config text.
      type: str
      sample: "#cloud-config\n{}"
    encoding:
      description: How the server stores it.
      type: str
      sample: plain
"""

import base64
import json

from ansible_collections.hpc.vcluster.plugins.module_utils._cloud_init import group_content
from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError


def view(group):
    if not group:
        return {}
    return {
        "name": group.get("name"),
        "description": group.get("description") or "",
        "meta_data": group.get("meta-data") or {},
        "user_data": group_content(group),
        "encoding": ((group.get("file") or {}).get("encoding") or "plain"),
    }


def run_module(module):
    params = module.params
    label = params["label"]
    site = module.clients.site
    if site.kind == "csm" and not site.has_service("cloud_init"):
        raise SiteError("CSM has no cloud-init admin API: per-label bootstrap on CSM is done by CFS configurations "
                        "(or set service_urls.cloud_init if this site runs an OpenCHAMI cloud-init server)")
    module.access.check_labels([label])
    client = module.clients.cloud_init
    current = client.group(label)
    before = view(current)
    if params["state"] == "absent":
        if current is None:
            return {"changed": False, "group": {}}
        if not module.check_mode:
            client.delete_group(label)
        result = {"changed": True, "group": {}}
        result.update(module.diff_result(before, {}))
        return result

    if module.clients.smd.group(label) is None:
        module.warn("SMD has no label %r: no node will get this cloud-init data until the label exists" % label)
    if params["cloud_config"] is not None:
        text = "#cloud-config\n" + json.dumps(params["cloud_config"], indent=2, sort_keys=True) + "\n"
    else:
        text = params["user_data"] or "#cloud-config\n"
    after = {"name": label, "description": params["description"], "meta_data": params["meta_data"] or {},
             "user_data": text, "encoding": params["encoding"]}
    if before == after:
        return {"changed": False, "group": before}
    content = text if params["encoding"] == "plain" else base64.b64encode(text.encode("utf-8")).decode("ascii")
    if not module.check_mode:
        client.put_group(label, {"description": params["description"], "meta-data": after["meta_data"],
                                 "file": {"content": content, "encoding": params["encoding"], "filename": ""}})
    result = {"changed": True, "group": after}
    result.update(module.diff_result(before, after))
    return result


def main():
    argument_spec = dict(
        label=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        description=dict(type="str", default=""),
        meta_data=dict(type="dict", default={}),
        cloud_config=dict(type="dict"),
        user_data=dict(type="str"),
        encoding=dict(type="str", choices=["plain", "base64"], default="plain"),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True,
                        mutually_exclusive=[("cloud_config", "user_data")])
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
