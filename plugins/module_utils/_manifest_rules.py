# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field rules of the manifest that a JSON Schema cannot say well, written against hostile input.

What a manifest carries ends up in SMD, BSS (the kernel command line), the fabric, fstab,
git and the vServices' configuration files, applied as root on every node. Each rule here
returns messages of the form ``<field path>: <what is wrong>; <what is allowed>`` and
quotes at most a short prefix of the bad value (``short``), so that a 1 MB value or a
secret never fills a log. The rules are pure functions of the manifest and a site
``policy`` (settings of the controller that a manifest cannot change: allowed git
transports and sources, reserved VLANs, where secrets may come from).
"""
from __future__ import annotations

import posixpath
import re

#: What a site may set (the action plugin fills it from its options or environment).
DEFAULT_POLICY = {
    "git_schemes": ["https", "ssh"],
    "git_sources": [],
    "reserved_vlans": [],
    "secret_env_prefix": "VCLUSTER_SECRET_",
    "secret_dirs": [],
    "secret_lookups": [],
}

#: The kernel's own limit: COMMAND_LINE_SIZE is 2048 bytes (NUL included) on x86_64 and arm64.
KERNEL_CMDLINE_MAX = 2047
#: What the boot step adds to the manifest's kernel_params (root=, the image URL, the image's parameters).
KERNEL_CMDLINE_RESERVED = 512
KERNEL_PARAMS_MAX = KERNEL_CMDLINE_MAX - KERNEL_CMDLINE_RESERVED

#: InfiniBand PKeys no vCluster may take: 0x0000 is invalid, 0x7fff is the default partition.
RESERVED_PKEYS = {0x0000: "is not a valid partition key", 0x7fff: "is the default partition (every port is in it)"}

#: Mount points (and bind sources) that would hide or expose the node's own system: the path
#: itself and everything under it.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run",
                "/sbin", "/sys", "/usr")
#: ... and directories that may hold a mount below them but must not be one.
SYSTEM_DIRS = ("/", "/var", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/tmp", "/tmp")

#: Variables Ansible itself sets or reads for a host: a vService config key must not become one.
MAGIC_VARIABLES = frozenset((
    "hostvars", "groups", "group_names", "inventory_hostname", "inventory_hostname_short", "inventory_dir",
    "inventory_file", "omit", "play_hosts", "playbook_dir", "role_name", "role_names", "role_path", "role_uuid",
    "environment", "vars", "item", "lookup", "query", "q", "self",
))

_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_CONTROL_MULTILINE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_JINJA_RE = re.compile(r"\{\{|\{%|\{#")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._@+/-]*$")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._@+-]+$")
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
_NFS_SOURCE_RE = re.compile(r"^(?P<host>%s):(?P<path>/.*)$" % _HOST)
_LUSTRE_NID = r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])@[a-z][a-z0-9]*"
_LUSTRE_SOURCE_RE = re.compile(r"^%s(?:[:,]%s)*:/(?P<fsname>[A-Za-z0-9_-]{1,8})(?P<path>/.*)?$" % (_LUSTRE_NID, _LUSTRE_NID))
_MOUNT_OPT_RE = re.compile(r"^[a-z0-9_]+(?:=[A-Za-z0-9._:/@+-]+)?$")
_ACCOUNT_RE = re.compile(r"^(?:[a-z_][a-z0-9_-]{0,31}\$?|[0-9]{1,10})$")
_GIT_SCP_RE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>%s):(?P<path>[^/].*)$" % _HOST)
_GIT_URL_RE = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>%s)(?::(?P<port>[0-9]{1,5}))?"
                         r"(?P<path>/[^?#]*)$" % _HOST)
_GIT_PATH_RE = re.compile(r"^[A-Za-z0-9._~/@+-]+$")
_GIT_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,127}$")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def short(value, limit=40):
    """A value for a message: strings quoted and cut after ``limit`` characters, long containers summarised."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return "%s... (%d characters)" % (repr(value[:limit]), len(value))
    if isinstance(value, (dict, list, tuple)):
        text = repr(value)
        if len(text) <= limit:
            return text
        return "a %s of %d item%s" % ("mapping" if isinstance(value, dict) else "list", len(value),
                                      "" if len(value) == 1 else "s")
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def walk(value, path=None):
    """Every (path, key or value, is_key) of plain data, depth first."""
    path = path or []
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                yield where, key, True
                stack.append((sub, where + [key]))
        elif isinstance(item, list):
            for index, sub in enumerate(item):
                stack.append((sub, where + [index]))
        else:
            yield where, item, False


def text_errors(manifest, multiline=lambda path: False):
    """Control characters (and Jinja delimiters) in any key or string value.

    A manifest is data: nothing in it is a template, and a control character (a newline
    above all) in a value that reaches a configuration file adds a line of its author's
    choice. ``multiline(path)`` says where a field documents newlines and tabs (the
    description, fields a role's contract marks ``x-multiline``).
    """
    errors = []
    for path, item, is_key in walk(manifest):
        if not isinstance(item, str):
            continue
        where = format_path(path + ([item] if is_key else []))
        if is_key:
            where = format_path(path) + " (key %s)" % short(item)
        allowed_newlines = not is_key and multiline(path)
        match = (_CONTROL_MULTILINE_RE if allowed_newlines else _CONTROL_RE).search(item)
        if match:
            errors.append("%s: control character U+%04X at offset %d of %s; %s" % (
                where, ord(match.group()), match.start(), short(item),
                "only newlines and tabs are allowed here" if allowed_newlines else
                "this field takes one line of printable text"))
        if _JINJA_RE.search(item):
            errors.append("%s: %s holds a Jinja delimiter ({{, {%% or {#): a manifest is data, never a template" % (
                where, short(item)))
    return sorted(errors)


def node_errors(manifest):
    """At least one node in all; an explicit node in one group only."""
    groups = manifest.get("nodes") or {}
    total, owner, errors = 0, {}, []
    for name in sorted(groups):
        group = groups[name]
        if not isinstance(group, dict):
            continue
        count = group.get("count")
        total += count if isinstance(count, int) and not isinstance(count, bool) else 0
        for index, xname in enumerate(group.get("nodes") or []):
            total += 1
            if xname in owner:
                errors.append("nodes.%s.nodes[%d]: %s is already in node group %s; a node belongs to one group" % (
                    name, index, short(xname), owner[xname]))
            owner.setdefault(xname, name)
    if groups and total == 0:
        errors.append("nodes: the vCluster has no node (every group has count 0); give at least one node")
    return errors


def network_errors(manifest, policy):
    network = manifest.get("network")
    errors = []
    if not isinstance(network, dict):
        return errors
    if isinstance(network.get("pkey"), str):
        try:
            value = int(network["pkey"], 16)
        except ValueError:
            value = None
        if value is not None and value & 0x7fff in RESERVED_PKEYS:
            errors.append("network.pkey: %s %s; a vCluster takes 0x0001-0x7ffe" % (
                short(network["pkey"]), RESERVED_PKEYS[value & 0x7fff]))
    vlan = network.get("vlan")
    if isinstance(vlan, int) and vlan in set(policy.get("reserved_vlans") or []):
        errors.append("network.vlan: %d is reserved by this site (%s)" % (
            vlan, ", ".join(str(v) for v in sorted(policy["reserved_vlans"]))))
    return errors


NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")


def kernel_params_errors(manifest):
    """The kernel command line's rules, on the vCluster's kernel_params and each node group's own."""
    fields = [("kernel_params", manifest.get("kernel_params"))]
    nodes = manifest.get("nodes")
    if isinstance(nodes, dict):
        fields += [("nodes.%s.kernel_params" % group, spec.get("kernel_params"))
                   for group, spec in sorted(nodes.items()) if isinstance(spec, dict)]
    errors = []
    for field, params in fields:
        if isinstance(params, str):
            errors.extend(_kernel_params_problems(field, params))
    return errors


def _kernel_params_problems(field, params):
    errors = []
    size = len(params.encode("utf-8"))
    if size > KERNEL_PARAMS_MAX:
        errors.append("%s: %d bytes; at most %d (the kernel takes %d bytes of command line and the boot "
                      "step adds root= and the image's parameters)"
                      % (field, size, KERNEL_PARAMS_MAX, KERNEL_CMDLINE_MAX))
    bad = sorted(set(NOT_PRINTABLE_ASCII.findall(params)))
    if bad:
        errors.append("%s: %s holds %s; kernel parameters are printable ASCII" % (
            field, short(params), ", ".join("U+%04X" % ord(ch) for ch in bad[:5])))
    if params.count('"') % 2:
        errors.append("%s: %s has an unbalanced double quote" % (field, short(params)))
    return errors


def path_problem(path, what="path", system=True):
    """Why ``path`` is not an acceptable absolute path, or None.

    ``system``: also refuse the root and system directories (a mount point or bind source
    on the node; not the path of an export on a file server).
    """
    if not isinstance(path, str) or not path.startswith("/"):
        return "%s is not an absolute path" % short(path)
    if not _PATH_RE.match(path):
        return "%s holds characters other than letters, digits and . _ @ + - /" % short(path)
    if path != "/" and (posixpath.normpath(path) != path or path.startswith("//")):
        return "%s is not normalised (no '.', '..', '//' or trailing '/'; %s)" % (
            short(path), short(posixpath.normpath(path)))
    if not system:
        return None
    if path in SYSTEM_DIRS:
        return "%s is %s; a %s for shared storage goes elsewhere, for example under /scratch or /apps" % (
            short(path), "the root directory" if path == "/" else "a system directory", what)
    for tree in SYSTEM_TREES:
        if path == tree or path.startswith(tree + "/"):
            return "%s is in the system tree %s (%s); a %s for shared storage goes elsewhere" % (
                short(path), tree, ", ".join(SYSTEM_TREES), what)
    return None


def _relative_problem(subdir):
    if subdir == "":
        return None
    if subdir.startswith("/") or subdir.endswith("/"):
        return "%s must be relative, without a leading or trailing '/'" % short(subdir)
    for part in subdir.split("/"):
        if part in ("", ".", ".."):
            return "%s must be normalised (no '', '.' or '..' part)" % short(subdir)
        if not _SEGMENT_RE.match(part):
            return "%s holds characters other than letters, digits and . _ @ + - /" % short(subdir)
    return None


def storage_errors(manifest):
    errors = []
    names, paths = {}, {}
    for index, mount in enumerate(manifest.get("storage") or []):
        if not isinstance(mount, dict):
            continue
        at = "storage[%d]" % index
        kind, source = mount.get("type"), mount.get("source")
        if mount.get("name") in names:
            errors.append("%s.name: %s is also storage[%d]" % (at, short(mount["name"]), names[mount["name"]]))
        names.setdefault(mount.get("name"), index)
        problem = path_problem(mount.get("path"), "mount point")
        if problem:
            errors.append("%s.path: %s" % (at, problem))
        elif mount["path"] in paths:
            errors.append("%s.path: %s is also the path of storage[%d]" % (at, short(mount["path"]), paths[mount["path"]]))
        paths.setdefault(mount.get("path"), index)
        if isinstance(source, str):
            problem = source_problem(kind, source)
            if problem:
                errors.append("%s.source: %s" % (at, problem))
        opts = mount.get("opts")
        if isinstance(opts, str):
            bad = [opt for opt in opts.split(",") if not _MOUNT_OPT_RE.match(opt)]
            if len(opts) > 512:
                errors.append("%s.opts: %d characters; at most 512" % (at, len(opts)))
            elif bad:
                errors.append("%s.opts: %s is not a mount option; options are comma-separated name or name=value "
                              "(value: letters, digits and . _ : / @ + -)" % (at, short(bad[0])))
        if isinstance(mount.get("subdir"), str):
            problem = _relative_problem(mount["subdir"])
            if problem:
                errors.append("%s.subdir: %s" % (at, problem))
        for field in ("owner", "group"):
            if isinstance(mount.get(field), str) and not _ACCOUNT_RE.match(mount[field]):
                errors.append("%s.%s: %s is not a user or group name (lower case, digits, _ and -, at most 32) or "
                              "number" % (at, field, short(mount[field])))
    return errors


def source_problem(kind, source):
    """Why ``source`` is not what mount type ``kind`` takes, or None."""
    if kind in ("nfs", "vast"):
        match = _NFS_SOURCE_RE.match(source)
        if not match:
            return "%s is not host:/export (a host name, IPv4 or [IPv6] address, then an absolute path)" % short(source)
        problem = path_problem(match.group("path"), system=False)
        return "the export of %s: %s" % (short(source), problem) if problem else None
    if kind == "lustre":
        match = _LUSTRE_SOURCE_RE.match(source)
        if not match:
            return ("%s is not <MGS NID>[:<NID>...]:/<fsname>[/path] (for example 10.0.0.1@o2ib:/scratch; fsname at "
                    "most 8 letters, digits, _ or -)" % short(source))
        problem = path_problem(match.group("path"), system=False) if match.group("path") else None
        return "the path of %s: %s" % (short(source), problem) if problem else None
    if kind == "bind":
        return path_problem(source, "bind source")
    return None


def git_source_problem(url, policy):
    """Why ``url`` may not be fetched as an external vService, or None.

    Only the transports the site allows (https and ssh by default; a site may add others
    for tests, never the manifest), no option-like value (``-u...``), no credentials in
    the URL, no ``ext::`` or local paths; when the site lists allowed sources, the URL
    must start with one of them.
    """
    schemes = [s.lower() for s in policy.get("git_schemes") or []]
    if not isinstance(url, str) or not url:
        return "a git URL is required"
    if url.startswith("-"):
        return "%s starts with '-' (git would read it as an option)" % short(url)
    if any(ch.isspace() for ch in url) or "," in url or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*::", url):
        return "%s holds white space or ',' or names a remote helper (<transport>::)" % short(url)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if scheme:
        scheme = scheme.group(1).lower()
        if scheme not in schemes:
            return "%s: the %s transport is not allowed; this site takes %s URLs" % (
                short(url), scheme, " or ".join(schemes))
        if scheme == "file":
            # only when the site allows local repositories (tests), never the manifest's choice
            path = url[len("file://"):]
            if not path.startswith("/") or not _GIT_PATH_RE.match(path) or ".." in path.split("/"):
                return "%s is not file:///<normalised absolute path>" % short(url)
            return _allowed_git_source(url, policy)
        match = _GIT_URL_RE.match(url)
        if not match:
            return "%s is not scheme://host[:port]/path with a host name and no credentials" % short(url)
        path = match.group("path")
    else:
        match = _GIT_SCP_RE.match(url)
        if not match:
            return "%s is not an https:// or ssh:// URL (or user@host:path)" % short(url)
        if "ssh" not in schemes:
            return "%s: the ssh transport is not allowed; this site takes %s URLs" % (short(url), " or ".join(schemes))
        path = match.group("path")
    if not _GIT_PATH_RE.match(path) or ".." in path.split("/") or "//" in path:
        return "%s: the repository path holds characters other than letters, digits and . _ ~ / @ + - or a '..'" % (
            short(url))
    return _allowed_git_source(url, policy)


def _allowed_git_source(url, policy):
    prefixes = policy.get("git_sources") or []
    if prefixes and not any(url.startswith(prefix) for prefix in prefixes):
        return "%s is not from a source this site allows (%s)" % (short(url), ", ".join(prefixes))
    return None


def git_version_problem(version):
    """Why ``version`` is not a tag, branch or commit git would take safely, or None."""
    if not isinstance(version, str) or not _GIT_REF_RE.match(version):
        return ("%s is not a tag, branch or commit (letters, digits and . _ / + -, starting with a letter or digit, "
                "at most 128)" % short(version))
    if ".." in version or "//" in version or version.endswith(("/", ".", ".lock")) or "/." in version:
        return "%s is not a valid git reference name (no '..', '//', '/.', nor a trailing '/', '.' or '.lock')" % (
            short(version))
    return None


def vservice_errors(manifest, policy, reserved_names=MAGIC_VARIABLES):
    """External sources and config keys of every vService."""
    errors = []
    for index, vs in enumerate(manifest.get("vservices") or []):
        if not isinstance(vs, dict):
            continue
        at = "vservices[%d]" % index
        source = vs.get("source")
        if isinstance(source, dict):
            problem = git_source_problem(source.get("git"), policy)
            if problem:
                errors.append("%s.source.git: %s" % (at, problem))
            if "version" in source:
                problem = git_version_problem(source.get("version"))
                if problem:
                    errors.append("%s.source.version: %s" % (at, problem))
        config = vs.get("config")
        if not isinstance(config, dict):
            continue
        prefix = "" if isinstance(source, dict) else "%s_" % vs.get("name")
        for key in config:
            variable = prefix + key
            if not _IDENTIFIER_RE.match(key):
                errors.append("%s.config: the key %s is not a variable name (letters, digits and _, not starting "
                              "with a digit)" % (at, short(key)))
            elif variable.startswith("ansible_") or variable in reserved_names:
                errors.append("%s.config.%s: %s is a variable Ansible itself uses (connection, magic or reserved "
                              "names); a vService's setting cannot be one" % (at, key, variable))
            elif variable.startswith("vcluster"):
                errors.append("%s.config.%s: %s is a name of the deploy playbook (vcluster*); a vService's setting "
                              "cannot be one" % (at, key, variable))
    return errors


def field_errors(manifest, policy=None, reserved_names=MAGIC_VARIABLES):
    """Every rule of this module, after the schema passed."""
    policy = dict(DEFAULT_POLICY, **(policy or {}))
    return (node_errors(manifest) + network_errors(manifest, policy) + kernel_params_errors(manifest)
            + storage_errors(manifest) + vservice_errors(manifest, policy, reserved_names))
