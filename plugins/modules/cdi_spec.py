#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: cdi_spec
short_description: Write a Container Device Interface (CDI) spec, checked against the specification
version_added: "0.1.0"
description:
  - Writes one CDI spec (JSON) that container engines (podman, CRI-O, containerd) read from C(/etc/cdi) to inject
    devices into containers (C(podman run --device vendor.com/class=name)).
  - The spec is checked first, every problem named by its option (C(devices[0].container_edits.env[1])), because an
    engine refuses a spec that breaks a rule of the specification, often far from the cause. Checked are the kind
    (C(vendor/class), the vendor a DNS name), device names, absolute paths, C(NAME=value) environment entries, octal
    file modes, device permissions, hook names, and the fields newer than O(cdi_version).
  - The file is written only when its content changes (keys in a stable order), atomically, with O(mode).
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
attributes:
  check_mode:
    support: full
    description: Checks the spec and reports whether the file would change, without writing it.
  diff_mode:
    support: full
    description: Shows the file before and after.
  platform:
    support: full
    platforms: posix
    description: Runs on the node that gets the spec.
options:
  path:
    description:
      - The spec file, ending in C(.json), usually C(/etc/cdi/<vendor>-<class>.json).
    type: path
    required: true
  state:
    description:
      - V(absent) removes the file.
    type: str
    choices: [present, absent]
    default: present
  kind:
    description:
      - C(vendor/class) of the devices, for example V(hpe.com/cxi) or V(nvidia.com/gpu). Required when O(state=present).
    type: str
  cdi_version:
    description:
      - The specification version the file declares. Engines refuse versions they do not know (podman 4.3 reads up to
        V(0.5.0)), and fields newer than it are refused here.
    type: str
    default: "0.5.0"
  annotations:
    description:
      - Annotations of the spec.
    type: dict
  devices:
    description:
      - The devices (at least one when O(state=present)). A container asks for one as C(<kind>=<name>).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The device's name (letters, digits, C(_), C(.), C(:), C(-)), for example V(cxi0) or V(all).
        type: str
        required: true
      annotations:
        description:
          - Annotations of the device.
        type: dict
      container_edits:
        description:
          - What the device changes in a container, with the keys of O(container_edits).
        type: dict
        required: true
  container_edits:
    description:
      - What every device of the spec changes in a container (applied once when any device is asked for).
      - Keys V(env) (C(NAME=value) strings), V(device_nodes) (V(path), V(host_path), V(type) V(c)/V(b)/V(u)/V(p),
        V(major), V(minor), V(file_mode) (octal, for example V('0666')), V(permissions) (V(rw), V(rwm)...), V(uid),
        V(gid)), V(mounts) (V(host_path), V(container_path), V(type), V(options)), V(hooks) (V(hook_name), V(path),
        V(args), V(env), V(timeout)) and V(additional_gids) (CDI 0.7.0).
      - O(devices[].container_edits) takes the same keys.
    type: dict
  mode:
    description:
      - The file's mode.
    type: str
    default: "0644"
notes:
  - The file is JSON. Engines read C(.json) and C(.yaml) specs alike, and JSON needs nothing beyond Python on the node.
"""

EXAMPLES = r"""
- name: The node's Slingshot NIC, for users' containers
  hpc.vcluster.cdi_spec:
    path: /etc/cdi/hpe.com-cxi.json
    kind: hpe.com/cxi
    container_edits:
      env: [FI_PROVIDER=cxi]
    devices:
      - name: cxi0
        container_edits:
          env: [HPC_VCLUSTER_CDI_DEVICES=cxi0]
          device_nodes:
            - {path: /dev/cxi0, permissions: rw, file_mode: "0666"}

- name: No such device any more
  hpc.vcluster.cdi_spec:
    path: /etc/cdi/openfabrics.org-uverbs.json
    state: absent
"""

RETURN = r"""
path:
  description: The spec file.
  returned: always
  type: str
  sample: /etc/cdi/hpe.com-cxi.json
spec:
  description: The spec as written (the file's keys), when O(state=present).
  returned: when state is present
  type: dict
  sample: {"cdiVersion": "0.5.0", "kind": "hpe.com/cxi", "devices": [{"name": "cxi0", "containerEdits": {"deviceNodes": [{"path": "/dev/cxi0"}]}}]}
devices:
  description: The fully qualified names a container can ask for.
  returned: when state is present
  type: list
  elements: str
  sample: ["hpe.com/cxi=cxi0"]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpc.vcluster.plugins.module_utils._cdi import SpecError, build_spec, render


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            kind=dict(type="str"),
            cdi_version=dict(type="str", default="0.5.0"),
            annotations=dict(type="dict"),
            devices=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                annotations=dict(type="dict"),
                container_edits=dict(type="dict", required=True),
            )),
            container_edits=dict(type="dict"),
            mode=dict(type="str", default="0644"),
        ),
        required_if=[("state", "present", ("kind", "devices"))],
        supports_check_mode=True,
    )
    path = module.params["path"]
    if not path.endswith(".json"):
        module.fail_json(msg="path: %s must end in .json (the spec is written as JSON)" % path)
    before = _read(path)
    if module.params["state"] == "absent":
        changed = before is not None
        if changed and not module.check_mode:
            os.unlink(path)
        module.exit_json(changed=changed, path=path, diff={"before": before or "", "after": ""})
    try:
        spec = build_spec(module.params["kind"], module.params["devices"], module.params["cdi_version"],
                          module.params["container_edits"], module.params["annotations"])
    except SpecError as exc:
        module.fail_json(msg="CDI spec %s: %s" % (path, exc), problems=exc.problems)
    after = render(spec)
    changed = before != after
    if changed and not module.check_mode:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        handle, tmp = tempfile.mkstemp(dir=directory, prefix=".cdi-spec-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(after)
        module.atomic_move(tmp, path)
    file_args = module.load_file_common_arguments(dict(path=path, mode=module.params["mode"]))
    if not module.check_mode or not changed:
        changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(changed=changed, path=path, spec=spec,
                     devices=["%s=%s" % (spec["kind"], d["name"]) for d in spec["devices"]],
                     diff={"before": before or "", "after": after})


if __name__ == "__main__":
    main()
