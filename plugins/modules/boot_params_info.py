#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: boot_params_info
short_description: Read what nodes boot next (BSS boot parameters) and which image that is
version_added: "0.2.0"
description:
  - Reads the BSS boot parameters (kernel, initrd, kernel parameters) of nodes or of a label's members, in bulk
    calls, and names the image they boot (by name and tag, or IMS id) following the conventions of
    M(hpc.vcluster.boot_params). Never changes anything.
  - Nodes without boot parameters are listed in RV(missing); on a real site they would wait in iPXE.
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
extends_documentation_fragment:
  - hpc.vcluster.info
  - hpc.vcluster.site.modules
  - hpc.vcluster.access
  - hpc.vcluster.access.targets
attributes:
  platform:
    support: full
    platforms: controller
    description: Runs where the site's API is reachable, usually the controller.
options:
  missing_ok:
    description:
      - With O(label), a label that does not exist has no members (an empty answer) instead of an error.
    type: bool
    default: false
seealso:
  - module: hpc.vcluster.boot_params
  - module: hpc.vcluster.power_info
"""

EXAMPLES = r"""
- name: What do the nodes of vc_blue boot?
  hpc.vcluster.boot_params_info:
    label: vc_blue
  delegate_to: localhost
  register: boot

- name: One line per node
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value }}"
  loop: "{{ boot.image | dict2items }}"
"""

RETURN = r"""
nodes:
  description: The nodes read.
  returned: always
  type: list
  elements: str
boot_params:
  description: Each node's boot parameters (nodes without any are left out).
  returned: always
  type: dict
  sample:
    x1000c0s0b0n0:
      kernel: https://api.example/boot-images/compute-base/2026.11/vmlinuz
      initrd: https://api.example/boot-images/compute-base/2026.11/initramfs.img
      params: console=ttyS0 root=live:https://api.example/boot-images/compute-base/2026.11/rootfs.squashfs
image:
  description: The image each node boots, V({name, tag}) or V({id}) (IMS), or null when the parameters name none.
  returned: always
  type: dict
  sample: {x1000c0s0b0n0: {name: compute-base, tag: "2026.11"}, x1000c0s1b0n0: {id: 4bf91021-8d99-4adf-945f-46de2ff50a3d}}
kernel_params:
  description: Each node's kernel parameters without the C(root=) of its image.
  returned: always
  type: dict
  sample: {x1000c0s0b0n0: console=ttyS0}
missing:
  description: The nodes that have no boot parameters.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.hpc.vcluster.plugins.module_utils._images import image_of, normalize_params
from ansible_collections.hpc.vcluster.plugins.module_utils._info import run_target_info


def without_root(params):
    """Kernel parameters less the image's ``root=`` (what a manifest's kernel_params holds)."""
    return " ".join(w for w in normalize_params(params).split(" ") if w and not w.startswith("root="))


def read(module, targets):
    current = module.clients.bss.by_host(targets) if targets else {}
    for triple in current.values():
        triple["params"] = normalize_params(triple["params"])
    return {
        "boot_params": current,
        "image": dict((x, image_of(current.get(x))) for x in targets),
        "kernel_params": dict((x, without_root(t["params"])) for x, t in current.items()),
        "missing": sorted(x for x in targets if x not in current),
    }


def main():
    run_target_info(read)


if __name__ == "__main__":
    main()
