# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate a vCluster manifest on the controller, before anything changes.

An action plugin (not a module) because it needs what only the controller has: the
manifest file next to the playbook, this collection's roles (whose ``meta/vservice.yml``
and ``meta/argument_specs.yml`` are the contract a vService's config is checked
against), the site's policy (environment of the controller, never the manifest), and
the secrets a manifest refers to, which it reads in memory to check them and never
returns.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.vars.reserved import get_reserved_names

from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import (
    DEFAULT_POLICY, HAS_JSONSCHEMA, MAGIC_VARIABLES, ManifestError, role_entry, short, validate)
from ansible_collections.hpc.vcluster.plugins.plugin_utils._manifest_load import copy_bounded, load_file, load_text
from ansible_collections.hpc.vcluster.plugins.plugin_utils import _secrets, _vservice_source

COLLECTION_ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))

#: The site's policy: option -> (environment variable, kind). Lists in the environment are
#: comma-separated (secret_dirs: os.pathsep-separated).
POLICY_OPTIONS = {
    "git_schemes": ("VCLUSTER_MANIFEST_GIT_SCHEMES", "list"),
    "git_sources": ("VCLUSTER_MANIFEST_GIT_SOURCES", "list"),
    "reserved_vlans": ("VCLUSTER_MANIFEST_RESERVED_VLANS", "ints"),
    "secret_env_prefix": ("VCLUSTER_MANIFEST_SECRET_ENV_PREFIX", "str"),
    "secret_dirs": ("VCLUSTER_MANIFEST_SECRET_DIRS", "paths"),
    "secret_lookups": ("VCLUSTER_MANIFEST_SECRET_LOOKUPS", "list"),
}
#: Where external vService roles are kept, per commit (option vservice_cache).
CACHE_ENV = "VCLUSTER_VSERVICE_CACHE"


def load_role(role_dir):
    """A role's catalogue entry (role_entry) from its meta files, read with the manifest loader's bounds.

    An external role without meta/vservice.yml has only its argument spec as a contract.
    """
    meta = os.path.join(role_dir, "meta")
    declaration = os.path.join(meta, "vservice.yml")
    info = load_file(declaration) if os.path.isfile(declaration) else {}
    spec = {}
    specs_file = os.path.join(meta, "argument_specs.yml")
    if os.path.isfile(specs_file):
        specs = load_file(specs_file) or {}
        spec = ((specs.get("argument_specs") or {}).get("main") or {}).get("options") or {}
    return role_entry(info, spec)


def load_catalog(roles_dir):
    """The collection's vService roles: those whose meta/vservice.yml declares them."""
    catalog = {}
    if not os.path.isdir(roles_dir):
        return catalog
    for name in sorted(os.listdir(roles_dir)):
        if os.path.isfile(os.path.join(roles_dir, name, "meta", "vservice.yml")):
            catalog[name] = load_role(os.path.join(roles_dir, name))
    return catalog


def _unknown_setting(name, options):
    """What an unknown setting is told: the settings the role takes, in order; a role with many
    (the Slurm role) gets as many as fit in a line, the count of the others and the closest
    names, so that a misspelt option still finds its right spelling."""
    names = sorted(str(option) for option in options)
    text = "unknown setting; it takes %s" % ", ".join(names)
    if len(text) <= 480:
        return text
    shown, used = [], 0
    for option in names:
        if used + len(option) + 2 > 400:
            break
        shown.append(option)
        used += len(option) + 2
    text = "unknown setting; it takes %s and %d more" % (", ".join(shown), len(names) - len(shown))
    close = difflib.get_close_matches(str(name), names, n=3)
    return text + ("; did you mean %s?" % " or ".join(close) if close else "")


def validate_spec(spec, params):
    """Role argument-spec errors for a vService's config, as (variable path, message).

    Unknown settings are reported one by one with what the role takes instead, since a
    misspelt option is the commonest mistake; the other errors keep Ansible's wording
    (the caller masks secrets and long values in them).
    """
    result = ArgumentSpecValidator(spec).validate(params)
    out = []
    for item in sorted(result.unsupported_parameters, key=str):
        path = list(item) if isinstance(item, tuple) else [item]
        options = spec
        for part in path[:-1]:
            options = (options.get(part) or {}).get("options") or {}
        out.append((".".join(str(p) for p in path), _unknown_setting(path[-1], options)))
    for error in result.errors:
        if type(error).__name__ != "UnsupportedError":
            out.append(("", str(getattr(error, "msg", error))))
    return out


def site_policy(args):
    """The policy from the task's options, else the controller's environment, else DEFAULT_POLICY."""
    policy = dict(DEFAULT_POLICY)
    for option, (env, kind) in POLICY_OPTIONS.items():
        value = args.get(option)
        if value is None and os.environ.get(env, "").strip():
            raw = os.environ[env].strip()
            value = raw if kind == "str" else [v.strip() for v in raw.split(os.pathsep if kind == "paths" else ",")
                                               if v.strip()]
        if value is None:
            continue
        if kind == "str":
            value = str(value)
        elif kind == "ints":
            try:
                value = [int(v) for v in (value if isinstance(value, list) else [value])]
            except (TypeError, ValueError):
                raise AnsibleActionFail("%s must be a list of VLAN numbers" % option)
        else:
            value = [str(v) for v in (value if isinstance(value, list) else [value])]
        policy[option] = value
    policy["git_schemes"] = [s.lower() for s in policy["git_schemes"]]
    return policy


def check_manifest(data, source="manifest", base_dir=None, policy=None, catalog=None, loader=None, templar=None,
                   task_vars=None, vservice_cache=None, fetch=True, resolved=None):
    """The normalized manifest (vServices with role, vars and has_destroy), or ManifestError.

    ``data`` is what the loader returned; ``base_dir`` the manifest file's directory
    (relative recipe and secret paths); ``policy`` the site's (site_policy). Secrets are
    read in memory to check them against the roles' contracts; the result carries only
    their references (file references made absolute). External vService roles are
    fetched at the asked version into ``vservice_cache`` (``fetch``), so that their own
    contract is checked too and the deploy runs exactly that commit; the result's
    ``fetched`` lists the ones this call installed. ``resolved``, a list, receives
    (field, value) of each secret read (for the digest; never returned).
    """
    policy = dict(DEFAULT_POLICY, **(policy or {}))
    fetched = {}

    def fetch_externals(manifest):
        errors, externals = [], {}
        for index, vs in enumerate(manifest.get("vservices") or []):
            if "source" not in vs:
                continue
            try:
                got = _vservice_source.fetch(vs["name"], vs["source"]["git"], vs["source"]["version"],
                                             vservice_cache, policy["git_schemes"])
                externals[vs["name"]] = dict(load_role(got["path"]), **got)
            except _vservice_source.SourceError as exc:
                errors.append("vservices[%d].source: %s" % (index, short(str(exc), 300)))
            except ManifestError as exc:
                errors.extend("vservices[%d].source: the role's meta files: %s" % (index, e) for e in exc.errors)
        if errors:
            raise ManifestError(errors)
        fetched.update(externals)
        return externals

    if not policy["secret_dirs"] and base_dir:
        policy["secret_dirs"] = [base_dir]
    catalog = load_catalog(os.path.join(COLLECTION_ROOT, "roles")) if catalog is None else catalog

    def resolve(ref, field):
        ref = _absolute(ref, base_dir)
        problem = _secrets.file_problem(ref["file"], policy["secret_dirs"]) if "file" in ref else None
        try:
            if problem:
                raise _secrets.SecretError(problem)
            value = _secrets.resolve(ref, loader, templar, task_vars)
        except _secrets.SecretError as exc:
            raise ManifestError(["%s: %s" % (field, exc)])
        if resolved is not None:
            resolved.append((field, str(value)))
        return value

    normalized = validate(data, catalog, validate_spec=validate_spec, source=source, policy=policy, resolve=resolve,
                          reserved_names=MAGIC_VARIABLES | frozenset(get_reserved_names()),
                          fetch_externals=fetch_externals if fetch else None)
    # recipes are relative to the manifest; the node groups' boot images are the same objects
    images = [("image", normalized["image"])] + [
        ("nodes.%s.image" % group, spec["image"]) for group, spec in sorted(normalized["nodes"].items())
        if "image" in spec]
    errors = []
    for field, image in images:
        errors.extend(_recipe_errors(field, image, base_dir))
    if errors:
        raise ManifestError(errors, source)
    for vs in normalized["vservices"]:
        external = "source" in vs
        for key, value in vs["config"].items():
            if isinstance(value, dict) and list(value) == ["secret"] and "file" in value["secret"]:
                vs["config"][key] = {"secret": _absolute(value["secret"], base_dir)}
        # the role: this collection's by name, an external one by the path of its pinned checkout
        if external and vs["name"] in fetched:
            vs["role"] = fetched[vs["name"]]["path"]
            vs["source"]["commit"] = fetched[vs["name"]]["commit"]
            vs["fetched"] = fetched[vs["name"]]["changed"]
        else:
            vs["role"] = vs["name"] if external else "hpc.vcluster.%s" % vs["name"]
        role_dir = vs["role"] if external else os.path.join(COLLECTION_ROOT, "roles", vs["name"])
        # the role's variables: config keys with the role prefix (external roles: as given)
        vs["vars"] = dict(vs["config"]) if external else dict(
            ("%s_%s" % (vs["name"], key), value) for key, value in vs["config"].items())
        # whether the role knows how to stop itself (tasks/destroy.yml), for the destroy playbook
        vs["has_destroy"] = os.path.isfile(os.path.join(role_dir, "tasks", "destroy.yml"))
        # what tells the lifecycle that a node still runs the vService as applied (meta/vservice.yml watch)
        vs["watch"] = None if external else catalog[vs["name"]].get("watch")
        # the settings its daemons take without a restart (an update that changes only these reconfigures)
        vs["reconfigure"] = [] if external else catalog[vs["name"]].get("reconfigure") or []
    return normalized


def _recipe_errors(field, image, base_dir):
    """Errors of an image's recipe, made absolute (relative to the manifest) in ``image``.

    It is read as the image step will (a tenant's file too), so that an arbitrary file is
    refused, never quoted.
    """
    recipe = image.get("recipe")
    if not recipe:
        return []
    if base_dir and not os.path.isabs(recipe):
        image["recipe"] = os.path.normpath(os.path.join(base_dir, recipe))
    where = short(image["recipe"], 200)
    if not os.path.isfile(image["recipe"]):
        return ["%s.recipe: file %s does not exist" % (field, where)]
    try:
        doc = load_file(image["recipe"])
    except ManifestError as exc:
        return ["%s.recipe: %s" % (field, error) for error in exc.errors]
    if not isinstance(doc, dict) or not isinstance(doc.get("options"), dict):
        return ["%s.recipe: %s is not an image recipe (a YAML mapping with options, packages and cmds)"
                % (field, where)]
    return []


def read_manifest(path=None, manifest=None):
    """(data, source, base_dir) from a file, YAML text or data Ansible already parsed; ManifestError if unreadable."""
    if path:
        return load_file(path), path, os.path.dirname(os.path.abspath(path))
    if isinstance(manifest, (str, bytes)):
        return load_text(manifest), "manifest", None
    return copy_bounded(manifest, convert=_secrets.to_reference, locate=_secrets.origin_of), "manifest", None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "manifest", "vservice_cache") + tuple(POLICY_OPTIONS))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        path, manifest = args.get("path"), args.get("manifest")
        if bool(path) == (manifest is not None):
            raise AnsibleActionFail("give exactly one of path (a manifest file) or manifest (its content)")
        if not HAS_JSONSCHEMA:
            raise AnsibleActionFail("the Python library 'jsonschema' is required on the controller to validate manifests")
        if path and not os.path.isabs(path) and not os.path.exists(path):
            path = self._find_needle("files", path)
        source = path or "manifest"
        try:
            data, source, base_dir = read_manifest(path, manifest)
            cache = args.get("vservice_cache") or os.environ.get(CACHE_ENV, "").strip() or None
            resolved = []
            normalized = check_manifest(data, source, base_dir or self._loader.get_basedir(), site_policy(args),
                                        loader=self._loader, templar=self._templar, task_vars=task_vars,
                                        vservice_cache=cache, resolved=resolved)
        except ManifestError as exc:
            result.update(failed=True, msg="%s is invalid:\n  %s" % (source, "\n  ".join(exc.errors)), errors=exc.errors)
            return result
        catalog = load_catalog(os.path.join(COLLECTION_ROOT, "roles"))
        fetched = [v["name"] for v in normalized["vservices"] if v.pop("fetched", False)]
        result.update(changed=bool(fetched), fetched=fetched, manifest=normalized, digest=digest(data, resolved),
                      masked=mask(data, catalog),
                      vservice_order=[v["name"] for v in normalized["vservices"]],
                      catalog=dict((k, {"version": v["version"], "description": v["description"]}) for k, v in catalog.items()))
        return result


def _absolute(ref, base_dir):
    """A reference with its file made absolute (relative to the manifest's directory)."""
    if "file" not in ref:
        return ref
    return dict(ref, file=_secrets.absolute_file(ref["file"], base_dir))


SECRET_NAME = re.compile(r"(?i)(pass$|passw|secret|token|private_?key|key_b64|credential)")
MASK = "********"


def digest(manifest, secrets=()):
    """sha256 of the manifest as written, over canonical JSON (key order and layout do not count).

    ``secrets``: (field, value) of the secrets its references read. A secret changed where
    it is kept (a vault value, a file, a variable) changes the digest although the manifest
    did not, so that an unchanged-looking re-run still applies it. They count through a
    slow key derivation (PBKDF2, 100,000 rounds), since the digest is stored beside the
    release and a password may be short.
    """
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    if secrets:
        joined = "\0".join("%s=%s" % item for item in sorted(secrets)).encode("utf-8")
        text += "\n" + hashlib.pbkdf2_hmac("sha256", joined, b"hpc.vcluster manifest secrets", 100000).hex()
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _mask_value(value, spec):
    """``value`` with the settings ``spec`` marks no_log, or whose name says secret, masked (nested options too)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            option = (spec or {}).get(key) or {}
            if option.get("no_log") or SECRET_NAME.search(str(key)):
                out[key] = MASK
            else:
                out[key] = _mask_value(item, option.get("options"))
        return out
    if isinstance(value, list):
        return [_mask_value(item, spec) for item in value]
    return value


def mask(manifest, catalog):
    """The manifest as written with its vServices' secrets masked (what a release record keeps)."""
    out = dict(manifest) if isinstance(manifest, dict) else manifest
    if not isinstance(out, dict) or not isinstance(out.get("vservices"), list):
        return out
    masked = []
    for vs in out["vservices"]:
        if isinstance(vs, dict) and isinstance(vs.get("config"), dict):
            name = vs.get("name")
            spec = (catalog.get(name) or {}).get("argument_spec") or {}
            prefixed = dict((k[len(name) + 1:], v) for k, v in spec.items() if name and k.startswith(name + "_"))
            vs = dict(vs, config=_mask_value(vs["config"], prefixed))
        masked.append(vs)
    out["vservices"] = masked
    return out
