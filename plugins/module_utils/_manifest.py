# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vCluster manifest: its JSON Schema, its validation, and the order of its vServices.

A manifest is validated on the controller before anything changes. Every error names
the offending field as a path (``vservices[2].config.partitions``) and what was
expected, and all errors are reported at once so a broken manifest needs one edit-run
cycle, not one per mistake. ``schemas/vcluster.schema.json`` is this SCHEMA written out
(a unit test keeps the two equal).
"""
from __future__ import annotations

import copy
import re

try:
    import jsonschema
    HAS_JSONSCHEMA = True
except ImportError:  # pragma: no cover - reported by the caller
    jsonschema = None
    HAS_JSONSCHEMA = False

API_VERSION = "hpc.vcluster/v1"
NAME_PATTERN = "^[a-z][a-z0-9_]*$"
XNAME_PATTERN = "^x[0-9]+c[0-9]+s[0-9]+b[0-9]+n[0-9]+$"
# one line of printable words; root= is the image's (boot_params sets it), never the manifest's
KERNEL_PARAMS_PATTERN = "^(?!(.* )?root=)[\\x20-\\x7e]*$"

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/hpc-vcluster/hpc.vcluster/schemas/vcluster.schema.json",
    "title": "vCluster manifest",
    "description": "One declarative description of a vCluster: its label, nodes, image, network, storage and vServices.",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "nodes", "image"],
    "properties": {
        "apiVersion": {"const": API_VERSION, "description": "Manifest format version."},
        "name": {
            "type": "string", "pattern": NAME_PATTERN, "maxLength": 40,
            "description": "The vCluster's name; it becomes the label (SMD/HSM group) of its nodes. Lower case, "
                           "[a-z][a-z0-9_]*, so that CSM's CFS inventory and Ansible keep it.",
        },
        "description": {"type": "string"},
        "site": {
            "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._ -]*$", "maxLength": 63,
            "description": "The site this vCluster is for (the site name its play is given): a play on another site "
                           "refuses the manifest. Without it, the manifest deploys on any site.",
        },
        "nodes": {
            "type": "object", "minProperties": 1,
            "propertyNames": {"pattern": NAME_PATTERN, "maxLength": 40},
            "additionalProperties": {"$ref": "#/$defs/nodeGroup"},
            "description": "Node groups by name (for example service and compute).",
        },
        "image": {"$ref": "#/$defs/image"},
        "kernel_params": {"type": "string", "pattern": KERNEL_PARAMS_PATTERN,
                          "description": "Extra kernel command-line parameters (root= comes from the image)."},
        "boot": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "method": {"enum": ["bss", "bos"], "description": "Write BSS directly (both kinds) or use a BOS session (CSM)."},
                "timeout": {"type": "integer", "minimum": 30, "description": "Seconds to wait for nodes to boot."},
            },
        },
        "network": {"oneOf": [{"$ref": "#/$defs/vlan"}, {"$ref": "#/$defs/pkey"}]},
        "storage": {"type": "array", "items": {"$ref": "#/$defs/mount"}},
        "vservices": {"type": "array", "items": {"$ref": "#/$defs/vservice"}},
    },
    "$defs": {
        "nodeGroup": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "count": {"type": "integer", "minimum": 0, "maximum": 100000},
                "select": {"$ref": "#/$defs/select"},
                "nodes": {"type": "array", "uniqueItems": True, "minItems": 1,
                          "items": {"type": "string", "pattern": XNAME_PATTERN}},
                "image": {"$ref": "#/$defs/image",
                          "description": "The image this node group boots, instead of the vCluster's image (for "
                                         "example aarch64 compute nodes beside x86 service nodes)."},
                "kernel_params": {"type": "string", "pattern": KERNEL_PARAMS_PATTERN,
                                  "description": "This node group's kernel parameters, instead of the vCluster's."},
            },
            "oneOf": [{"required": ["count"], "not": {"required": ["nodes"]}},
                      {"required": ["nodes"], "not": {"required": ["count"]}}],
            "description": "Either a count of free nodes matching select, or explicit node xnames.",
        },
        "select": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "role": {"enum": ["Compute", "Service", "System", "Application", "Storage", "Management"]},
                "subrole": {"type": "string"},
                "arch": {"enum": ["X86", "ARM", "Other"]},
                "class": {"enum": ["River", "Mountain", "Hill"]},
                "nettype": {"enum": ["Sling", "Infiniband", "Ethernet", "OEM", "None"]},
            },
        },
        "image": {
            "type": "object", "additionalProperties": False, "required": ["name", "tag"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$"},
                "tag": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"},
                "recipe": {"type": "string", "description": "Image-builder style recipe (path relative to the manifest) "
                                                            "to build the image from when it does not exist."},
                "ims_id": {"type": "string", "pattern": "^[0-9a-f-]{36}$", "description": "CSM: an existing IMS image id."},
            },
        },
        "vlan": {
            "type": "object", "additionalProperties": False, "required": ["vlan"],
            "properties": {"vlan": {"type": "integer", "minimum": 2, "maximum": 4094}},
        },
        "pkey": {
            "type": "object", "additionalProperties": False, "required": ["pkey"],
            "properties": {
                "pkey": {"type": "string", "pattern": "^0x[0-7]?[0-9a-fA-F]{1,3}$"},
                "membership": {"enum": ["full", "limited"]},
            },
        },
        "mount": {
            "type": "object", "additionalProperties": False, "required": ["name", "type", "source", "path"],
            "properties": {
                "name": {"type": "string", "pattern": NAME_PATTERN},
                "type": {"enum": ["nfs", "bind", "lustre", "vast"]},
                "source": {"type": "string", "minLength": 1},
                "path": {"type": "string", "pattern": "^/"},
                "subdir": {"type": "string", "description": "Directory under source (default: the vCluster's name)."},
                "opts": {"type": "string", "description": "Mount options (the type's defaults when not given)."},
                "owner": {"type": "string"},
                "group": {"type": "string"},
                "mode": {"type": "string", "pattern": "^0?[0-7]{3,4}$"},
                "nodes": {"type": "array", "items": {"type": "string", "pattern": NAME_PATTERN}},
            },
        },
        "vservice": {
            "type": "object", "additionalProperties": False, "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": NAME_PATTERN},
                "version": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+){0,2}$"},
                "source": {
                    "type": "object", "additionalProperties": False, "required": ["git", "version"],
                    "properties": {"git": {"type": "string", "minLength": 1}, "version": {"type": "string", "minLength": 1}},
                    "description": "An external role, by git URL and version, instead of a role of this collection.",
                },
                "config": {"type": "object", "description": "Role variables without the role-name prefix."},
                "nodes": {"type": "array", "items": {"type": "string", "pattern": NAME_PATTERN},
                          "description": "Node groups the vService runs on (default: all)."},
                "after": {"type": "array", "items": {"type": "string", "pattern": NAME_PATTERN},
                          "description": "vServices to apply before this one, beyond those the role declares."},
            },
        },
    },
}

_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


class ManifestError(ValueError):
    """The manifest is invalid; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, errors, source="manifest"):
        self.errors = list(errors)
        super(ManifestError, self).__init__("%s is invalid:\n  %s" % (source, "\n  ".join(self.errors)))


def format_path(parts):
    """``['vservices', 2, 'config']`` -> ``vservices[2].config``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += "[%d]" % part
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _type_of(value):
    for name, pytype in (("boolean", bool), ("integer", int), ("number", float), ("string", str),
                         ("array", list), ("object", dict)):
        if isinstance(value, pytype):
            return _TYPE_NAMES[name]
    return "null" if value is None else type(value).__name__


def _describe(error):
    """One readable sentence for a jsonschema error."""
    validator, expected, value = error.validator, error.validator_value, error.instance
    if validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "expected %s, got %s %r" % (" or ".join(_TYPE_NAMES.get(k, k) for k in kinds), _type_of(value), value)
    if validator == "required":
        missing = [k for k in expected if isinstance(value, dict) and k not in value]
        return "missing required field%s %s" % ("s" if len(missing) > 1 else "", ", ".join(missing))
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        return "unknown field%s %s; allowed: %s" % ("s" if len(extra) > 1 else "", ", ".join(extra), ", ".join(allowed))
    if validator == "pattern":
        return "%r does not match %s" % (value, expected)
    if validator == "enum":
        return "%r is not one of %s" % (value, ", ".join(str(v) for v in expected))
    if validator == "const":
        return "must be %r, got %r" % (expected, value)
    if validator in ("minimum", "maximum", "minLength", "maxLength", "minItems", "minProperties"):
        return "%r violates %s %s" % (value, validator, expected)
    if validator == "uniqueItems":
        return "items must be unique"
    if validator == "oneOf":
        return "must be exactly one of the allowed shapes (%s)" % _shapes(error.schema["oneOf"])
    return error.message


def _branch_schema(option):
    if "$ref" in option:
        return SCHEMA["$defs"][option["$ref"].rsplit("/", 1)[1]]
    return option


def _explain_one_of(error):
    """For a oneOf failure, the errors of the shape the value evidently meant (it has that shape's keys)."""
    if error.validator != "oneOf" or not error.context or not isinstance(error.instance, dict):
        return [error]
    for index, option in enumerate(error.validator_value):
        required = _branch_schema(option).get("required") or []
        if required and all(k in error.instance for k in required):
            branch = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] == index]
            if branch and not any(e.validator == "not" for e in branch):
                return branch
    return [error]


def _shapes(options):
    names = []
    for option in options:
        req = _branch_schema(option).get("required") or []
        names.append("{%s}" % ", ".join(req) if req else "?")
    return " or ".join(names)


def schema_errors(manifest):
    """Every schema violation, as ``path: message`` strings, sorted by path."""
    if not HAS_JSONSCHEMA:
        raise ManifestError(["the Python library 'jsonschema' is required on the controller to validate manifests"])
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = []
    for error in validator.iter_errors(manifest):
        for sub in _explain_one_of(error):
            errors.append((list(sub.absolute_path), _describe(sub)))
    errors.sort(key=lambda item: [str(p) for p in item[0]])
    seen, out = set(), []
    for path, msg in errors:
        line = "%s: %s" % (format_path(path), msg)
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def _version_tuple(text):
    return tuple(int(p) for p in str(text).split("."))


def version_compatible(asked, provided):
    """Same major version, and the role at least as new as the manifest asks."""
    a, p = _version_tuple(asked), _version_tuple(provided)
    a, p = a + (0,) * (3 - len(a)), p + (0,) * (3 - len(p))
    return a[0] == p[0] and p >= a


def semantic_errors(manifest, catalog):
    """Rules a schema cannot express: known vServices, versions, references between fields.

    ``catalog``: {role name: {"version": "1.0", "after": [...], "argument_spec": {...}}} for the
    collection's vService roles.
    """
    errors = []
    groups = set((manifest.get("nodes") or {}).keys())
    vservices = manifest.get("vservices") or []
    names = [v.get("name") for v in vservices if isinstance(v, dict)]
    for index, vs in enumerate(vservices):
        if not isinstance(vs, dict) or "name" not in vs:
            continue
        path = "vservices[%d]" % index
        name = vs["name"]
        if names.count(name) > 1 and names.index(name) != index:
            errors.append("%s.name: vService %s is listed more than once" % (path, name))
        if "source" not in vs:
            if name not in catalog:
                errors.append("%s.name: unknown vService %r; this collection provides %s (or give source.git and "
                              "source.version for an external role)" % (path, name, ", ".join(sorted(catalog)) or "none"))
                continue
            provided = catalog[name].get("version")
            if vs.get("version") and provided and not version_compatible(vs["version"], provided):
                errors.append("%s.version: %s %s is asked, this collection provides %s" % (
                    path, name, vs["version"], provided))
        for ref in vs.get("nodes") or []:
            if ref not in groups:
                errors.append("%s.nodes: node group %r is not defined in nodes (%s)" % (path, ref, ", ".join(sorted(groups))))
        for ref in vs.get("after") or []:
            if ref not in names:
                errors.append("%s.after: vService %r is not in this manifest" % (path, ref))
    for index, mount in enumerate(manifest.get("storage") or []):
        if isinstance(mount, dict):
            for ref in mount.get("nodes") or []:
                if ref not in groups:
                    errors.append("storage[%d].nodes: node group %r is not defined in nodes" % (index, ref))
    for name, group in (manifest.get("nodes") or {}).items():
        if isinstance(group, dict) and group.get("count") and not group.get("select"):
            errors.append("nodes.%s.select: a node group given by count needs select (at least a role)" % name)
    return errors


def apply_order(manifest, catalog):
    """vServices in the order they must be applied: declared ``after`` (role and manifest), then manifest order.

    Raises ManifestError on a cycle.
    """
    vservices = manifest.get("vservices") or []
    names = [v["name"] for v in vservices]
    deps = {}
    for vs in vservices:
        wanted = list(vs.get("after") or []) + list((catalog.get(vs["name"]) or {}).get("after") or [])
        deps[vs["name"]] = [d for d in wanted if d in names and d != vs["name"]]
    ordered, state = [], {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise ManifestError(["vservices: dependency cycle %s" % " -> ".join(trail + [name])])
        state[name] = "visiting"
        for dep in deps[name]:
            visit(dep, trail + [name])
        state[name] = "done"
        ordered.append(name)

    for name in names:
        visit(name, [])
    by_name = dict((v["name"], v) for v in vservices)
    return [by_name[n] for n in ordered]


def config_errors(manifest, catalog, validate_spec):
    """Each vService's config checked against its role's argument spec.

    ``validate_spec(spec, params)`` returns ``[(path, message)]`` where ``path`` names the
    role variable (and sub-option) at fault, or is empty; the role prefix is taken off so
    the error names the manifest's own field (``vservices[0].config.partitions``).
    """
    errors = []
    for index, vs in enumerate(manifest.get("vservices") or []):
        if not isinstance(vs, dict) or vs.get("name") not in catalog or "source" in vs:
            continue
        spec = catalog[vs["name"]].get("argument_spec") or {}
        prefix = vs["name"] + "_"
        params = dict((prefix + k, v) for k, v in (vs.get("config") or {}).items())
        for path, message in validate_spec(spec, params):
            field = "vservices[%d].config" % index
            if path:
                field += "." + (path[len(prefix):] if path.startswith(prefix) else path)
            errors.append("%s: %s" % (field, re.sub(r"(?<![A-Za-z0-9_])" + re.escape(prefix), "", message)))
    return sorted(errors)


def validate(manifest, catalog, validate_spec=None, source="manifest"):
    """The normalized manifest, or ManifestError listing every problem."""
    if not isinstance(manifest, dict):
        raise ManifestError(["(top level): expected a mapping, got %s" % _type_of(manifest)], source)
    errors = schema_errors(manifest)
    if not errors:
        errors = semantic_errors(manifest, catalog)
    if not errors and validate_spec is not None:
        errors = config_errors(manifest, catalog, validate_spec)
    if errors:
        raise ManifestError(errors, source)
    normalized = copy.deepcopy(manifest)
    normalized.setdefault("apiVersion", API_VERSION)
    normalized.setdefault("description", "")
    normalized.setdefault("kernel_params", "")
    normalized.setdefault("storage", [])
    normalized.setdefault("vservices", [])
    boot = normalized.setdefault("boot", {})
    boot.setdefault("method", "bss")
    boot.setdefault("timeout", 600)
    for vs in normalized["vservices"]:
        vs.setdefault("config", {})
        vs.setdefault("nodes", sorted(normalized["nodes"]))
        if "source" not in vs:
            vs.setdefault("version", catalog[vs["name"]].get("version"))
    normalized["vservices"] = apply_order(normalized, catalog)
    # what each node group boots: its own image and kernel parameters, else the vCluster's
    normalized["boot_by_group"] = dict(
        (group, {"image": spec.get("image") or normalized["image"],
                 "kernel_params": spec.get("kernel_params", normalized["kernel_params"])})
        for group, spec in sorted(normalized["nodes"].items()))
    # the storage role's mounts, per node group (a mount without nodes goes on every group)
    normalized["storage_by_group"] = dict(
        (group, [dict((k, v) for k, v in m.items() if k != "nodes") for m in normalized["storage"]
                 if group in (m.get("nodes") or normalized["nodes"])])
        for group in sorted(normalized["nodes"]))
    return normalized


def label_is_valid(label):
    return bool(re.match(NAME_PATTERN, label or ""))
