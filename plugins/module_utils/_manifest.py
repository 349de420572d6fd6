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

import base64
import binascii
import copy
import re

try:
    import jsonschema
    HAS_JSONSCHEMA = True
except ImportError:  # pragma: no cover - reported by the caller
    jsonschema = None
    HAS_JSONSCHEMA = False

from ansible_collections.hpc.vcluster.plugins.module_utils._manifest_rules import (  # noqa: F401 (re-exported)
    DEFAULT_POLICY, MAGIC_VARIABLES, ManifestError, field_errors, format_path, short, text_errors, walk)

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
        "description": {"type": "string", "maxLength": 4096,
                        "description": "Free text (Unicode); the only top-level field that may hold newlines and tabs."},
        "site": {
            "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._ -]*$", "maxLength": 63,
            "description": "The site this vCluster is for (the site name its play is given): a play on another site "
                           "refuses the manifest. Without it, the manifest deploys on any site.",
        },
        "nodes": {
            "type": "object", "minProperties": 1, "maxProperties": 64,
            "propertyNames": {"pattern": NAME_PATTERN, "maxLength": 40},
            "additionalProperties": {"$ref": "#/$defs/nodeGroup"},
            "description": "Node groups by name (for example service and compute).",
        },
        "image": {"$ref": "#/$defs/image"},
        "kernel_params": {"type": "string", "pattern": KERNEL_PARAMS_PATTERN,
                          "description": "Extra kernel command-line parameters: printable ASCII, at most 1535 bytes "
                                         "(the kernel takes 2047; the boot step adds root=, which comes from the "
                                         "image, and the image's own)."},
        "boot": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "method": {"enum": ["bss", "bos"], "description": "Write BSS directly (both kinds) or use a BOS session (CSM)."},
                "timeout": {"type": "integer", "minimum": 30, "description": "Seconds to wait for nodes to boot."},
            },
        },
        "network": {"oneOf": [{"$ref": "#/$defs/vlan"}, {"$ref": "#/$defs/pkey"}]},
        "storage": {"type": "array", "maxItems": 64, "items": {"$ref": "#/$defs/mount"}},
        "vservices": {"type": "array", "maxItems": 64, "items": {"$ref": "#/$defs/vservice"}},
    },
    "$defs": {
        "nodeGroup": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "count": {"type": "integer", "minimum": 0, "maximum": 100000},
                "select": {"$ref": "#/$defs/select"},
                "nodes": {"type": "array", "uniqueItems": True, "minItems": 1, "maxItems": 100000,
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
                "subrole": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"},
                "arch": {"enum": ["X86", "ARM", "Other"]},
                "class": {"enum": ["River", "Mountain", "Hill"]},
                "nettype": {"enum": ["Sling", "Infiniband", "Ethernet", "OEM", "None"]},
            },
        },
        "image": {
            "type": "object", "additionalProperties": False, "required": ["name", "tag"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$", "maxLength": 128},
                "tag": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$", "maxLength": 128},
                "recipe": {"type": "string", "minLength": 1, "maxLength": 1024,
                           "description": "Image-builder style recipe (path relative to the manifest) "
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
                "source": {"type": "string", "minLength": 1, "maxLength": 1024,
                           "description": "nfs and vast: host:/export; lustre: <MGS NID>[:<NID>...]:/<fsname>[/path]; "
                                          "bind: an absolute path on the node (not a system directory)."},
                "path": {"type": "string", "pattern": "^/", "maxLength": 1024,
                         "description": "Mount point: absolute, normalised, not / nor a system directory."},
                "subdir": {"type": "string", "maxLength": 1024,
                           "description": "Directory under source (default: the vCluster's name); relative, normalised."},
                "opts": {"type": "string", "description": "Mount options (the type's defaults when not given): "
                                                          "comma-separated name or name=value."},
                "owner": {"type": "string", "description": "User name or number."},
                "group": {"type": "string", "description": "Group name or number."},
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
                    "properties": {
                        "git": {"type": "string", "minLength": 1, "maxLength": 1024,
                                "description": "https:// or ssh:// URL (or user@host:path), as the site allows."},
                        "version": {"type": "string", "minLength": 1, "maxLength": 128,
                                    "description": "A tag, branch or commit; this is what runs."}},
                    "description": "An external role, by git URL and version, instead of a role of this collection.",
                },
                "config": {"type": "object", "description": "Role variables without the role-name prefix (external "
                                                            "roles: as they are named). A secret is given as a reference "
                                                            "({secret: {env|file|vault|lookup: ...}} or !vault), never in "
                                                            "clear."},
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

#: The forms of a secret reference (the value of ``{"secret": {...}}``).
SECRET_KINDS = ("env", "file", "vault", "lookup")
SECRET_FORMS = ("{secret: {env: NAME}}, {secret: {file: PATH}}, !vault (or {secret: {vault: ...}}) or "
                "{secret: {lookup: NAME, terms: [...]}}")
MASK = "********"


def _type_of(value):
    for name, pytype in (("boolean", bool), ("integer", int), ("number", float), ("string", str),
                         ("array", list), ("object", dict)):
        if isinstance(value, pytype):
            return _TYPE_NAMES[name]
    return "null" if value is None else type(value).__name__


def _describe(error, hidden=False):
    """One readable sentence for a jsonschema error; ``hidden``: never quote the value (a secret)."""
    validator, expected, value = error.validator, error.validator_value, error.instance
    shown = "the value (hidden: a secret)" if hidden else short(value)
    if validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "expected %s, got %s%s" % (" or ".join(_TYPE_NAMES.get(k, k) for k in kinds), _type_of(value),
                                          "" if hidden or isinstance(value, (dict, list)) else " " + short(value))
    if validator == "required":
        missing = [k for k in expected if isinstance(value, dict) and k not in value]
        return "missing required field%s %s" % ("s" if len(missing) > 1 else "", ", ".join(missing))
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        names = ", ".join(short(k, 30).strip("'") for k in extra[:5])
        return "unknown field%s %s; allowed: %s" % ("s" if len(extra) > 1 else "", names, ", ".join(allowed))
    if validator == "pattern" and expected == KERNEL_PARAMS_PATTERN:
        return "%s: kernel parameters are one line of printable ASCII, without root= (the image sets it)" % shown
    if validator == "pattern":
        return "%s does not match %s" % (shown, expected)
    if validator == "enum":
        return "%s is not one of %s" % (shown, ", ".join(str(v) for v in expected))
    if validator == "const":
        return "must be %r, got %s" % (expected, shown)
    if validator in ("minLength", "maxLength") and isinstance(value, str):
        return "%d characters; %s %s" % (len(value), "at least" if validator == "minLength" else "at most", expected)
    if validator in ("minItems", "maxItems", "minProperties", "maxProperties") and isinstance(value, (list, dict)):
        return "%d item%s; %s %s" % (len(value), "" if len(value) == 1 else "s",
                                     "at least" if validator.startswith("min") else "at most", expected)
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return "%s violates %s %s" % (shown, validator, expected)
    if validator == "uniqueItems":
        return "items must be unique"
    if validator == "oneOf":
        return "must be exactly one of the allowed shapes (%s)" % _shapes(error.schema["oneOf"])
    if validator == "not":
        return "%s is not allowed here" % shown
    return short(error.message, 200) if not hidden else "the value (hidden: a secret) is not valid here"


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


def _sorted_unique(errors):
    errors.sort(key=lambda item: [str(p) for p in item[0]])
    seen, out = set(), []
    for path, msg in errors:
        line = "%s: %s" % (format_path(path), msg)
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def schema_errors(manifest):
    """Every schema violation, as ``path: message`` strings, sorted by path.

    vService ``config`` is left to the roles' contracts (config_errors), which know which
    settings are secrets and must never be quoted.
    """
    if not HAS_JSONSCHEMA:
        raise ManifestError(["the Python library 'jsonschema' is required on the controller to validate manifests"])
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = []
    for error in validator.iter_errors(manifest):
        for sub in _explain_one_of(error):
            path = list(sub.absolute_path)
            hidden = len(path) > 3 and path[0] == "vservices" and path[2] == "config"
            errors.append((path, _describe(sub, hidden)))
    return _sorted_unique(errors)


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
        elif name in catalog:
            errors.append("%s.name: %s is a vService of this collection; an external role needs another name" % (
                path, name))
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


# ----------------------------------------------------------------------------- roles' contracts

def role_entry(info, argument_spec):
    """A catalogue entry from a role's meta/vservice.yml (``info``) and the options of its main entry point.

    The role's contract is its argument spec (types, choices, ``no_log``) plus, in
    meta/vservice.yml, ``config_schema`` (a JSON Schema over the config mapping, with the
    keywords of ContractValidator) and ``multiline`` (settings whose strings may hold
    newlines and tabs).
    """
    info = info if isinstance(info, dict) else {}
    argument_spec = argument_spec if isinstance(argument_spec, dict) else {}
    watch = info.get("watch")
    if watch is not None and not watch_is_valid(watch):
        raise ManifestError(["meta/vservice.yml: watch must be {files: [absolute paths or globs], services: "
                             "[unit names]}"])
    return {"version": str(info.get("version", "")), "after": list(info.get("after") or []),
            "description": str(info.get("description", "")), "argument_spec": argument_spec,
            "config_schema": info.get("config_schema") or {}, "multiline": list(info.get("multiline") or []),
            "no_log": sorted(k for k, v in argument_spec.items() if isinstance(v, dict) and v.get("no_log")),
            "watch": watch, "reconfigure": list(info.get("reconfigure") or []),
            "site_settings": [str(k) for k in info.get("site_settings") or []]}


WATCH_FILE = re.compile(r"^/[A-Za-z0-9_./*?-]+$")
WATCH_UNIT = re.compile(r"^[A-Za-z0-9@_.-]+$")


def watch_is_valid(watch):
    """A vService's watch list goes into a shell on the nodes: absolute paths or globs, unit names, nothing else."""
    if not isinstance(watch, dict) or set(watch) - set(("files", "services")):
        return False
    files, units = watch.get("files") or [], watch.get("services") or []
    return (isinstance(files, list) and isinstance(units, list)
            and all(isinstance(f, str) and WATCH_FILE.match(f) for f in files)
            and all(isinstance(u, str) and WATCH_UNIT.match(u) for u in units))


def contract_of(vs, catalog, externals=None):
    """(catalogue entry, variable prefix) of a vService, or (None, prefix) when its role is not known yet."""
    if "source" in vs:
        return (externals or {}).get(vs.get("name")), ""
    entry = catalog.get(vs.get("name"))
    prefix = "%s_" % vs.get("name")
    if entry is None:
        return None, prefix
    # the role's options carry the prefix; the manifest's settings do not
    unprefixed = dict(entry)
    unprefixed["no_log"] = [k[len(prefix):] if k.startswith(prefix) else k for k in entry.get("no_log") or []]
    return unprefixed, prefix


def _x_unique_by(validator, key, instance, schema):
    if not validator.is_type(instance, "array"):
        return
    seen = {}
    for index, item in enumerate(instance):
        if isinstance(item, dict) and key in item:
            value = item[key]
            marker = repr(value)
            if marker in seen:
                yield jsonschema.ValidationError("%s %s is also item %d" % (key, short(value), seen[marker]))
            seen.setdefault(marker, index)


def _x_base64_min_bytes(validator, size, instance, schema):
    if not isinstance(instance, str):
        return
    text = re.sub(r"\s", "", instance)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        yield jsonschema.ValidationError("not base64 (letters, digits, + and /, padded with = to a multiple of 4)")
        return
    if len(data) < size:
        yield jsonschema.ValidationError("decodes to %d bytes; at least %d" % (len(data), size))


def contract_validator(schema):
    """A Draft 2020-12 validator with the contract keywords ``x-unique-by`` and ``x-base64-min-bytes``.

    ``x-message`` (a string, or a mapping of keyword to string) is what an error at that
    subschema says instead of the generic sentence.
    """
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {
        "x-unique-by": _x_unique_by, "x-base64-min-bytes": _x_base64_min_bytes})
    return cls(schema)


def contract_errors(schema, config, at, hidden=()):
    """Errors of a vService's config (plain values, secrets resolved) against its role's config_schema."""
    if not schema:
        return []
    errors = []
    for error in contract_validator(schema).iter_errors(config):
        path = list(error.absolute_path)
        secret = bool(path) and path[0] in hidden
        message = error.schema.get("x-message") if isinstance(error.schema, dict) else None
        if isinstance(message, dict):
            message = message.get(error.validator)
        key_error = "propertyNames" in error.absolute_schema_path
        if message:
            shown = ("(the key %s)" if key_error else "(got %s)") % short(error.instance)
            text = message if secret else "%s %s" % (message, shown)
        elif error.validator in ("x-unique-by", "x-base64-min-bytes"):
            text = error.message
        else:
            text = ("the key %s: " % short(error.instance) if key_error else "") + _describe(error, secret)
        errors.append(([at] + path, text))
    return [line.replace(at + ".", at + ".", 1) for line in _sorted_unique(errors)]


def scrub(message, secrets):
    """A message with every secret value masked, long values cut and its length capped."""
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            message = message.replace(value, MASK)
    return message if len(message) <= 1000 else message[:1000] + "..."


# ----------------------------------------------------------------------------- secrets

def secret_ref(value):
    """The inside of a secret reference ``{"secret": {...}}``, or None."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secret"), dict):
        return value["secret"]
    return None


def secret_ref_problem(ref, policy):
    """Why a secret reference is malformed or not allowed by the site, or None."""
    kinds = [k for k in SECRET_KINDS if k in ref]
    extra = set(ref) - set(SECRET_KINDS) - (set(["terms"]) if "lookup" in ref else set())
    if len(kinds) != 1 or extra:
        return "a secret reference is one of %s" % SECRET_FORMS
    kind = kinds[0]
    value = ref[kind]
    if not isinstance(value, str) or not value:
        return "secret.%s is a non-empty string" % kind
    if kind == "env":
        prefix = policy.get("secret_env_prefix") or ""
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            return "secret.env: %s is not an environment variable name" % short(value)
        if not value.startswith(prefix):
            return ("secret.env: %s is not a variable this site lets manifests read (names starting with %s); the "
                    "controller's own credentials stay out of reach" % (short(value), prefix))
    if kind == "vault" and not value.lstrip().startswith("$ANSIBLE_VAULT;"):
        return "secret.vault: the text ansible-vault encrypt_string prints ($ANSIBLE_VAULT;...)"
    if kind == "lookup":
        allowed = policy.get("secret_lookups") or []
        if value not in allowed:
            return "secret.lookup: %s is not a lookup this site allows (%s)" % (
                short(value), ", ".join(allowed) or "none; a site lists them in secret_lookups")
        terms = ref.get("terms", [])
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            return "secret.terms: a list of strings"
    return None


def find_refs(value, path):
    """(path, reference) of every secret reference under ``value``."""
    found, stack = [], [(value, path)]
    while stack:
        item, where = stack.pop()
        if secret_ref(item) is not None:
            found.append((where, secret_ref(item)))
        elif isinstance(item, dict):
            stack.extend((sub, where + [key]) for key, sub in item.items())
        elif isinstance(item, list):
            stack.extend((sub, where + [index]) for index, sub in enumerate(item))
    return found


def misplaced_secrets(manifest):
    """Secret references outside vService settings."""
    errors = []
    for key, value in manifest.items():
        places = [(value, [key])] if key != "vservices" else [
            (dict((k, v) for k, v in vs.items() if k != "config"), ["vservices", index])
            for index, vs in enumerate(value if isinstance(value, list) else []) if isinstance(vs, dict)]
        for item, path in places:
            errors.extend("%s: a secret reference is only for a vService setting (vservices[N].config.<setting>)"
                          % format_path(where) for where, _ref in find_refs(item, path))
    return errors


def site_setting_errors(manifest, catalog, externals=None):
    """Settings a role reserves to the site (``site_settings`` in meta/vservice.yml) are not a manifest's."""
    errors = []
    for index, vs in enumerate(manifest.get("vservices") or []):
        entry, prefix = contract_of(vs, catalog, externals)
        reserved = set((entry or {}).get("site_settings") or [])
        if not reserved:
            continue
        allowed = sorted(k[len(prefix):] for k in entry.get("argument_spec") or {}
                         if k.startswith(prefix) and k[len(prefix):] not in reserved)
        for key in sorted(k for k in (vs.get("config") or {}) if k in reserved):
            errors.append("vservices[%d].config.%s: a setting of the site, not of a manifest (the site gives it to "
                          "the %s vService); a manifest may set %s" % (index, key, vs.get("name"),
                                                                       ", ".join(allowed) or "nothing"))
    return errors


def secret_errors(manifest, catalog, policy, externals=None):
    """Secrets are references, only for the settings a role marks no_log; the site allows their source."""
    errors = []
    for index, vs in enumerate(manifest.get("vservices") or []):
        config = vs.get("config") or {}
        at = "vservices[%d].config" % index
        entry, _prefix = contract_of(vs, catalog, externals)
        no_log = set((entry or {}).get("no_log") or [])
        reserved = set((entry or {}).get("site_settings") or [])
        for key, value in config.items():
            if key in reserved:
                continue
            ref = secret_ref(value)
            if ref is None:
                for path, _ref in find_refs(value, [key]):
                    errors.append("%s.%s: a secret reference is only for a whole setting, one the role marks no_log"
                                  % (at, format_path(path)))
                if key in no_log and value not in ("", None):
                    errors.append("%s.%s: a secret (the role marks it no_log): give it as %s, never in clear" % (
                        at, key, SECRET_FORMS))
                continue
            problem = secret_ref_problem(ref, policy)
            if problem:
                errors.append("%s.%s: %s" % (at, key, problem))
            elif entry is not None and entry.get("argument_spec") and key not in no_log:
                errors.append("%s.%s: a secret reference is only for settings the role marks no_log (%s)" % (
                    at, key, ", ".join(sorted(no_log)) or "none"))
    return errors


def config_errors(manifest, catalog, validate_spec, externals=None, resolve=None):
    """Each vService's config checked against its role's contract (argument spec, then config_schema).

    ``validate_spec(spec, params)`` returns ``[(path, message)]`` where ``path`` names the
    role variable (and sub-option) at fault, or is empty; the role prefix is taken off so
    the error names the manifest's own field (``vservices[0].config.partitions``).
    ``resolve(ref, field)`` returns a secret's value (kept in memory for the checks, never
    returned) or raises ManifestError; without it, settings given by reference are not
    checked. No message quotes a secret.
    """
    errors = []
    for index, vs in enumerate(manifest.get("vservices") or []):
        entry, prefix = contract_of(vs, catalog, externals)
        if not isinstance(vs, dict) or entry is None:
            continue
        at = "vservices[%d].config" % index
        config, secrets = {}, []
        for key, value in (vs.get("config") or {}).items():
            ref = secret_ref(value)
            if ref is None:
                config[key] = value
                if key in entry["no_log"] and isinstance(value, str):
                    secrets.append(value)
                continue
            if resolve is None:
                continue
            try:
                config[key] = resolve(ref, "%s.%s" % (at, key))
            except ManifestError as exc:
                errors.extend(exc.errors)
                continue
            secrets.append(str(config[key]))
        found = []
        spec = entry.get("argument_spec") or {}
        if spec:
            params = dict((prefix + k, v) for k, v in config.items())
            for path, message in validate_spec(spec, params):
                field = at
                if path:
                    field += "." + (path[len(prefix):] if prefix and path.startswith(prefix) else path)
                if prefix:
                    message = re.sub(r"(?<![A-Za-z0-9_])" + re.escape(prefix), "", message)
                found.append("%s: %s" % (field, message))
        found.extend(contract_errors(entry.get("config_schema"), config, at, entry["no_log"]))
        long_values = [v for _p, v, _k in walk(config) if isinstance(v, str) and len(v) > 40]
        for message in found:
            for value in sorted(long_values, key=len, reverse=True):
                message = message.replace(repr(value), short(value)).replace(value, short(value))
            errors.append(scrub(message, secrets))
    return sorted(errors)


def _multiline(manifest, catalog, externals):
    """Paths where newlines and tabs are documented: the description, and settings roles mark multiline."""
    allowed = {}
    for index, vs in enumerate(manifest.get("vservices") or []):
        if isinstance(vs, dict):
            entry, _prefix = contract_of(vs, catalog, externals)
            allowed[index] = set((entry or {}).get("multiline") or [])

    def multiline(path):
        if path == ["description"] or path[-2:] == ["secret", "vault"]:
            return True
        return (len(path) >= 4 and path[0] == "vservices" and path[2] == "config"
                and path[3] in allowed.get(path[1], ()))
    return multiline


def validate(manifest, catalog, validate_spec=None, source="manifest", policy=None, fetch_externals=None, resolve=None,
             reserved_names=MAGIC_VARIABLES):
    """The normalized manifest, or ManifestError listing every problem.

    In order, each pass only when the previous found nothing: text (control characters,
    Jinja) and the JSON Schema; field rules (_manifest_rules) and references between
    fields; secrets; each vService's config against its role's contract. ``policy`` is
    the site's (DEFAULT_POLICY); ``fetch_externals(manifest)``, called once the sources
    passed the rules, returns the catalogue entries (role_entry) of the external roles by
    name, or raises ManifestError; ``resolve`` turns a secret reference into its value,
    in memory.
    """
    policy = dict(DEFAULT_POLICY, **(policy or {}))
    if not isinstance(manifest, dict):
        raise ManifestError(["(top level): expected a mapping, got %s" % _type_of(manifest)], source)
    externals = {}
    # an external role's settings are checked for text once its contract (multiline...) is known
    deferred = fetch_externals is not None and isinstance(manifest.get("vservices"), list)
    first = dict(manifest, vservices=[dict((k, v) for k, v in vs.items() if k != "config" or "source" not in vs)
                                      if isinstance(vs, dict) else vs for vs in manifest["vservices"]]) \
        if deferred else manifest
    errors = (text_errors(first, _multiline(manifest, catalog, externals)) + misplaced_secrets(manifest)
              + schema_errors(manifest))
    if not errors:
        errors = semantic_errors(manifest, catalog) + field_errors(manifest, policy, reserved_names)
    if not errors and fetch_externals is not None:
        try:
            externals = fetch_externals(manifest) or {}
        except ManifestError as exc:
            errors = exc.errors
        else:
            errors = text_errors(manifest, _multiline(manifest, catalog, externals))
    if not errors:
        errors = site_setting_errors(manifest, catalog, externals) + secret_errors(manifest, catalog, policy, externals)
    if not errors and validate_spec is not None:
        errors = config_errors(manifest, catalog, validate_spec, externals, resolve)
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
