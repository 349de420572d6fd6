#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: boot_params
short_description: Set the BSS boot parameters (kernel, initrd, kernel parameters, image) of nodes or a label
version_added: "0.1.0"
description:
  - Sets what nodes boot next, in BSS (the Boot Script Service), for a list of nodes or every member of a label.
  - Fields not given are kept as they are. The module computes each node's complete boot parameters and sends them
    with C(PUT), which creates or replaces them the same way on OpenCHAMI and CSM (C(PATCH) means different things
    on the two) and only for the nodes whose parameters differ, one call per distinct set of parameters.
  - O(image) turns an image into kernel, initrd and C(root=) URLs following the site's conventions (see
    docs/boot-and-power.md), so a playbook names the image rather than its artifacts.
  - Nothing reboots here; use M(hpc.vcluster.power) or M(hpc.vcluster.bos_session) to boot the nodes.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
  - hpc.vcluster.access.targets
attributes:
  check_mode:
    support: full
    description: Reports which nodes would get new boot parameters, and what they would be.
  diff_mode:
    support: full
    description: Shows the boot parameters before and after, for the nodes that change.
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API is reachable, usually the controller.
options:
  state:
    description:
      - V(present) sets the boot parameters; V(absent) removes them (the nodes then have nothing to boot).
    type: str
    choices: [present, absent]
    default: present
  kernel:
    description:
      - Kernel URL. Overrides the kernel of O(image).
    type: str
  initrd:
    description:
      - Initrd URL. Overrides the initrd of O(image).
    type: str
  params:
    description:
      - Kernel parameters, replacing the current ones. With O(image), its C(root=) replaces any C(root=) in them.
      - When not given, the current parameters are kept (with O(image), only their C(root=) changes).
    type: str
  image:
    description:
      - The image to boot. Either O(image.id) (an IMS image, CSM) or O(image.name) and O(image.tag).
      - By name, the artifacts are C(<url_base>/<name>/<tag>/vmlinuz), C(.../initramfs.img) and
        C(root=live:.../rootfs.squashfs). By IMS id, C(s3://boot-images/<id>/kernel), C(.../initrd) and
        C(root=craycps-s3:s3://boot-images/<id>/rootfs), as BOS writes them.
    type: dict
    suboptions:
      name:
        description:
          - Image name.
        type: str
      tag:
        description:
          - Image tag.
        type: str
        default: latest
      id:
        description:
          - IMS image id.
        type: str
      url_base:
        description:
          - Where images by name are published (the S3 bucket URL of the site's boot images).
          - If not set, E(VCLUSTER_BOOT_IMAGES_URL) is used, then V(s3://boot-images) on CSM and
            C(<api_url>/boot-images) on OpenCHAMI.
        type: str
notes:
  - BSS answers C(null) when it holds nothing and 404 when a node has no parameters; both mean "none" here.
seealso:
  - module: hpc.vcluster.power
  - module: hpc.vcluster.image_info
"""

EXAMPLES = r"""
- name: Boot the nodes of vc_blue from compute-base 2026.11 next time
  hpc.vcluster.boot_params:
    label: vc_blue
    image:
      name: compute-base
      tag: "2026.11"
    params: console=ttyS0,115200 ip=dhcp
  delegate_to: localhost

- name: Boot two nodes from an IMS image (CSM)
  hpc.vcluster.boot_params:
    nodes: ["x1000c0s[0-1]b0n0"]
    image:
      id: 4bf91021-8d99-4adf-945f-46de2ff50a3d
  delegate_to: localhost

- name: Explicit artifacts
  hpc.vcluster.boot_params:
    nodes: [nid000001]
    kernel: http://s3.example:9000/boot-images/efi-images/compute/vmlinuz-6.1
    initrd: http://s3.example:9000/boot-images/efi-images/compute/initramfs-6.1.img
    params: nomodeset ro root=live:http://s3.example:9000/boot-images/compute/rootfs ip=dhcp
  delegate_to: localhost

- name: Forget the boot parameters of a released vCluster
  hpc.vcluster.boot_params:
    label: vc_blue
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
nodes:
  description: The nodes acted on.
  returned: always
  type: list
  elements: str
  sample: [x1000c0s0b0n0, x1000c0s1b0n0]
changed_nodes:
  description: The nodes whose boot parameters changed (would change, in check mode).
  returned: always
  type: list
  elements: str
  sample: [x1000c0s1b0n0]
boot_params:
  description: Each node's boot parameters after the task (as they would be, in check mode); absent nodes are left out.
  returned: always
  type: dict
  sample:
    x1000c0s0b0n0:
      kernel: https://api.example/boot-images/compute-base/2026.11/vmlinuz
      initrd: https://api.example/boot-images/compute-base/2026.11/initramfs.img
      params: console=ttyS0,115200 ip=dhcp root=live:https://api.example/boot-images/compute-base/2026.11/rootfs.squashfs
"""

import os

from ansible_collections.hpc.vcluster.plugins.module_utils._images import (
    get_param, image_boot_artifacts, normalize_params, set_param)
from ansible_collections.hpc.vcluster.plugins.module_utils._module import SiteModule
from ansible_collections.hpc.vcluster.plugins.module_utils._targets import (
    TARGET_MUTUALLY_EXCLUSIVE, TARGET_REQUIRED_ONE_OF, module_targets, target_argument_spec)

EMPTY = {"kernel": "", "initrd": "", "params": ""}


def wanted_triple(current, params, artifacts):
    triple = dict(current or EMPTY)
    if artifacts:
        triple["kernel"], triple["initrd"] = artifacts["kernel"], artifacts["initrd"]
    for field in ("kernel", "initrd"):
        if params.get(field) is not None:
            triple[field] = params[field]
    if params.get("params") is not None:
        triple["params"] = params["params"]
    triple["params"] = normalize_params(triple["params"])
    if artifacts and get_param(triple["params"], "root") != artifacts["root"]:
        triple["params"] = set_param(triple["params"], "root", artifacts["root"])
    return triple


def run_module(module):
    params = module.params
    clients = module.clients
    absent = params["state"] == "absent"
    targets = module_targets(module, allow_empty=absent, missing_ok=absent)
    bss = clients.bss
    current = bss.by_host(targets)
    for triple in current.values():
        triple["params"] = normalize_params(triple["params"])

    if absent:
        gone = sorted(x for x in targets if x in current)
        if gone and not module.check_mode:
            bss.delete(gone)
        result = {"changed": bool(gone), "nodes": targets, "changed_nodes": gone, "boot_params": {}}
        if gone:
            result.update(module.diff_result(dict((x, current[x]) for x in gone), {}))
        return result

    image = params.get("image")
    artifacts = None
    if image:
        image = dict(image)
        if not image.get("url_base"):
            image["url_base"] = os.environ.get("VCLUSTER_BOOT_IMAGES_URL") or None
        artifacts = image_boot_artifacts(image, clients.site)
    if not artifacts and all(params.get(f) is None for f in ("kernel", "initrd", "params")):
        module.fail_json(msg="nothing to set: give image, or kernel, initrd or params")

    after, groups = {}, {}
    for xname in targets:
        want = wanted_triple(current.get(xname), params, artifacts)
        after[xname] = want
        if current.get(xname) != want:
            groups.setdefault((want["kernel"], want["initrd"], want["params"]), []).append(xname)
    changed_nodes = sorted(x for hosts in groups.values() for x in hosts)
    if not module.check_mode:
        for (kernel, initrd, kparams), hosts in sorted(groups.items()):
            bss.put(hosts, kernel=kernel, initrd=initrd, params=kparams)
    result = {"changed": bool(changed_nodes), "nodes": targets, "changed_nodes": changed_nodes, "boot_params": after}
    if changed_nodes:
        result.update(module.diff_result(dict((x, current.get(x, {})) for x in changed_nodes),
                                         dict((x, after[x]) for x in changed_nodes)))
    return result


def main():
    argument_spec = target_argument_spec()
    argument_spec.update(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        kernel=dict(type="str"),
        initrd=dict(type="str"),
        params=dict(type="str"),
        image=dict(type="dict", options=dict(
            name=dict(type="str"),
            tag=dict(type="str", default="latest"),
            id=dict(type="str"),
            url_base=dict(type="str"),
        ), mutually_exclusive=[("name", "id")], required_one_of=[("name", "id")]),
    )
    module = SiteModule(argument_spec, access_control=True, supports_check_mode=True,
                        mutually_exclusive=TARGET_MUTUALLY_EXCLUSIVE, required_one_of=TARGET_REQUIRED_ONE_OF)
    module.run(lambda: run_module(module))


if __name__ == "__main__":
    main()
