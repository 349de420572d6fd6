# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CDI devices from the device nodes a node has, for hpc.vcluster.cdi_spec (the cdi role).

The documentation is in ``cdi_devices.yml`` next to this file.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping

from ansible.errors import AnsibleFilterError


def cdi_devices(paths, env_name, file_mode="", permissions="rw", all_name="all"):
    """One device per device node, named after it, each setting ``env_name``; then ``all_name``."""
    if isinstance(paths, (str, bytes, Mapping)) or not isinstance(paths, Iterable):
        raise AnsibleFilterError("hpc.vcluster.cdi_devices: expected a list of device node paths, got %s"
                                 % type(paths).__name__)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(env_name)):
        raise AnsibleFilterError("hpc.vcluster.cdi_devices: env_name %r is not a variable name" % (env_name,))
    paths = sorted(str(p) for p in paths)

    def node(path):
        item = {"path": path, "permissions": permissions}
        if file_mode:
            item["file_mode"] = str(file_mode)
        return item

    names = [posixpath.basename(p) for p in paths]
    if len(set(names)) != len(names):
        raise AnsibleFilterError("hpc.vcluster.cdi_devices: two device nodes have the same name: %s" % ", ".join(paths))
    devices = [{"name": name, "container_edits": {"env": ["%s=%s" % (env_name, name)], "device_nodes": [node(path)]}}
               for name, path in zip(names, paths)]
    if devices and all_name:
        devices.append({"name": all_name, "container_edits": {
            "env": ["%s=%s" % (env_name, ",".join(names))], "device_nodes": [node(p) for p in paths]}})
    return devices


class FilterModule:
    """CDI filters."""

    def filters(self):
        return {"cdi_devices": cdi_devices}
