# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container Device Interface specs: check one against the specification, and write it.

Container engines (podman, CRI-O, containerd) refuse a whole spec directory entry that breaks
a rule, often with a message far from the cause; checking on the way in names the field.
The rules are those of the CDI specification (cncf-tags/container-device-interface,
SPEC.md): the kind, device names, the fields each ``cdiVersion`` introduced, absolute paths,
``KEY=value`` environment entries. Module options are snake_case, the file's keys camelCase.
"""
from __future__ import annotations

import json
import re

#: Versions of the specification, oldest first; the lab's podman 4.3 reads up to 0.5.0.
VERSIONS = ("0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0")
_VENDOR = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_CLASS = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
_DEVICE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
DEVICE_TYPES = ("c", "b", "u", "p")


class SpecError(ValueError):
    """The spec breaks a rule; ``problems`` names each field and what it must be."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _version_at_least(version, minimum):
    return VERSIONS.index(version) >= VERSIONS.index(minimum)


def _file_mode(value, where, problems):
    """0o666 from 438, "0666" or "666"; the file holds the number."""
    if isinstance(value, bool):
        problems.append("%s: an octal mode such as '0666'" % where)
        return None
    if isinstance(value, int):
        mode = value
    else:
        text = str(value).strip()
        if not re.match(r"^0?[0-7]{3,4}$", text):
            problems.append("%s: %r is not an octal mode such as '0666'" % (where, value))
            return None
        mode = int(text, 8)
    if not 0 <= mode <= 0o7777:
        problems.append("%s: %r is not a file mode" % (where, value))
        return None
    return mode


def _absolute(value, where, problems):
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
        problems.append("%s: %r must be an absolute path" % (where, value))


def _edits(edits, where, version, problems):
    """A containerEdits mapping from the module's snake_case options."""
    out = {}
    edits = edits or {}
    known = {"env", "device_nodes", "mounts", "hooks", "additional_gids"}
    for key in sorted(set(edits) - known):
        problems.append("%s.%s: unknown; containerEdits take %s" % (where, key, ", ".join(sorted(known))))
    env = edits.get("env") or []
    for index, entry in enumerate(env):
        if not isinstance(entry, str) or not _ENV.match(entry) or "\n" in entry:
            problems.append("%s.env[%d]: %r must be NAME=value (NAME: letters, digits, _)" % (where, index, entry))
    if env:
        out["env"] = list(env)
    nodes = []
    for index, node in enumerate(edits.get("device_nodes") or []):
        here = "%s.device_nodes[%d]" % (where, index)
        _absolute(node.get("path"), here + ".path", problems)
        item = {"path": node.get("path")}
        if node.get("host_path") is not None:
            _absolute(node["host_path"], here + ".host_path", problems)
            item["hostPath"] = node["host_path"]
        if node.get("type") is not None:
            if node["type"] not in DEVICE_TYPES:
                problems.append("%s.type: %r is not one of %s" % (here, node["type"], ", ".join(DEVICE_TYPES)))
            item["type"] = node["type"]
        for key in ("major", "minor", "uid", "gid"):
            if node.get(key) is not None:
                if not isinstance(node[key], int) or isinstance(node[key], bool) or node[key] < 0:
                    problems.append("%s.%s: a number (0 or more)" % (here, key))
                item[key] = node[key]
        if node.get("file_mode") is not None:
            mode = _file_mode(node["file_mode"], here + ".file_mode", problems)
            if mode is not None:
                item["fileMode"] = mode
        if node.get("permissions") is not None:
            perms = node["permissions"]
            if not isinstance(perms, str) or not re.match(r"^(r?w?m?|none)$", perms) or perms == "":
                problems.append("%s.permissions: %r is not a combination of r, w and m" % (here, perms))
            item["permissions"] = perms
        nodes.append(item)
    if nodes:
        out["deviceNodes"] = nodes
    mounts = []
    for index, mount in enumerate(edits.get("mounts") or []):
        here = "%s.mounts[%d]" % (where, index)
        _absolute(mount.get("host_path"), here + ".host_path", problems)
        _absolute(mount.get("container_path"), here + ".container_path", problems)
        item = {"hostPath": mount.get("host_path"), "containerPath": mount.get("container_path")}
        if mount.get("type"):
            item["type"] = mount["type"]
        if mount.get("options"):
            item["options"] = list(mount["options"])
        mounts.append(item)
    if mounts:
        out["mounts"] = mounts
    hooks = []
    for index, hook in enumerate(edits.get("hooks") or []):
        here = "%s.hooks[%d]" % (where, index)
        if hook.get("hook_name") not in HOOK_NAMES:
            problems.append("%s.hook_name: %r is not one of %s" % (here, hook.get("hook_name"), ", ".join(HOOK_NAMES)))
        _absolute(hook.get("path"), here + ".path", problems)
        item = {"hookName": hook.get("hook_name"), "path": hook.get("path")}
        for key in ("args", "env"):
            if hook.get(key):
                item[key] = list(hook[key])
        if hook.get("timeout") is not None:
            item["timeout"] = hook["timeout"]
        hooks.append(item)
    if hooks:
        out["hooks"] = hooks
    gids = edits.get("additional_gids") or []
    if gids:
        if not _version_at_least(version, "0.7.0"):
            problems.append("%s.additional_gids: needs cdi_version 0.7.0 or later (it is %s)" % (where, version))
        if not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in gids):
            problems.append("%s.additional_gids: group IDs (numbers above 0)" % where)
        out["additionalGids"] = list(gids)
    return out


def build_spec(kind, devices, cdi_version="0.5.0", container_edits=None, annotations=None):
    """The spec as a mapping ready for JSON, or :class:`SpecError` naming every problem."""
    problems = []
    if cdi_version not in VERSIONS:
        problems.append("cdi_version: %r is not a CDI version (%s)" % (cdi_version, ", ".join(VERSIONS)))
        cdi_version = VERSIONS[-1]
    vendor, _sep, klass = (kind or "").partition("/")
    if not _sep or not _VENDOR.match(vendor) or "." not in vendor or not _CLASS.match(klass):
        problems.append("kind: %r must be vendor/class, the vendor a DNS name (nvidia.com, hpe.com) and the class "
                        "letters, digits, '_', '.', '-'" % kind)
    elif len(klass) > 63:
        problems.append("kind: the class %r is longer than 63 characters" % klass)
    spec = {"cdiVersion": cdi_version, "kind": kind}
    if annotations:
        spec["annotations"] = dict((str(k), str(v)) for k, v in annotations.items())
    if not devices:
        problems.append("devices: a spec needs at least one device")
    seen = set()
    out = []
    for index, device in enumerate(devices or []):
        where = "devices[%d]" % index
        name = device.get("name")
        if not isinstance(name, str) or not _DEVICE.match(name):
            problems.append("%s.name: %r must be letters, digits, '_', '.', ':', '-' (no leading or trailing "
                            "punctuation)" % (where, name))
        elif name[0].isdigit() and not _version_at_least(cdi_version, "0.5.0"):
            problems.append("%s.name: %r starts with a digit, which needs cdi_version 0.5.0 or later" % (where, name))
        if name in seen:
            problems.append("%s.name: %r is given twice" % (where, name))
        seen.add(name)
        item = {"name": name, "containerEdits": _edits(device.get("container_edits"), where + ".container_edits",
                                                       cdi_version, problems)}
        if not item["containerEdits"]:
            problems.append("%s.container_edits: a device must change something (device_nodes, env, mounts, hooks)"
                            % where)
        if device.get("annotations"):
            item["annotations"] = dict((str(k), str(v)) for k, v in device["annotations"].items())
        out.append(item)
    spec["devices"] = out
    if container_edits:
        edits = _edits(container_edits, "container_edits", cdi_version, problems)
        if edits:
            spec["containerEdits"] = edits
    if problems:
        raise SpecError(problems)
    return spec


def render(spec):
    """The file's text: stable key order, so an unchanged spec is an unchanged file."""
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"
