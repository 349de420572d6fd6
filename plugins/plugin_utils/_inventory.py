# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared base of the SMD inventory plugins (hpc.vcluster.openchami and hpc.vcluster.csm).

Three SMD calls per site, whatever the node count (``/State/Components``, ``/memberships``,
``/Inventory/EthernetInterfaces``; partitions come from the memberships), through the
collection's one SMD client. The raw replies are what is cached; the inventory is rebuilt
from them on every run, so changing ``hostnames``, ``group_by`` or ``compose`` takes effect
on a cache hit. Default groups are built in Python; Jinja (``compose``, ``groups``,
``keyed_groups``) only runs when the user asks for it, because each expression costs about
0.3 ms per host on ansible-core 2.19.

The model (``SiteData`` -> ``build_model``) is plain Python, independent of Ansible, so unit
tests can check naming, grouping and collision rules directly; ``SmdInventoryBase`` feeds it
from SMD or the cache and writes it into Ansible's inventory.
"""
from __future__ import annotations

import contextlib
import fnmatch
import gc
import hashlib
import json
import os
import re
import string
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, requests
from ansible_collections.hpc.vcluster.plugins.module_utils._clients import SiteClients
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SITE_KINDS, SITE_OPTION_ENV, SiteError
from ansible_collections.hpc.vcluster.plugins.module_utils._smd import COMPONENT_FILTERS

try:
    from ansible.utils.vars import validate_variable_name
except ImportError:  # pragma: no cover - ansible-core < 2.19
    validate_variable_name = None

try:
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - ansible-core < 2.19 has no data tagging; strings are templates already
    def trust_as_template(value):
        return value

# Bump when the cached entry's shape or the queries change: old entries are then ignored.
CACHE_FORMAT = 1

SITE_OPTIONS = tuple(SITE_OPTION_ENV)
# Options a ``sites`` entry inherits from the top level when it does not set them. Never
# URLs or credentials: a token meant for one site must never reach another.
INHERITED_SITE_OPTIONS = ("site_kind", "ca_path", "validate_certs", "timeout")
# allowed_labels and rbac_from_token are the site's access control for the modules (the same list
# gives a play each site's module_defaults, through the hpc.vcluster.site_options filter); the
# inventory shows every node and does not use them.
SITE_ENTRY_KEYS = frozenset(SITE_OPTIONS) | {"name", "group_prefix", "prefix", "filters", "allowed_labels", "rbac_from_token"}

GROUP_KINDS = ("label", "partition", "role", "role_subrole", "subrole", "arch", "class", "state", "site")
DEFAULT_GROUP_NAMES = {
    "label": "{label}",
    "partition": "{partition}",
    "role": "{role}",
    "role_subrole": "{role}_{subrole}",
    "subrole": "subrole_{subrole}",
    "arch": "arch_{arch}",
    "class": "class_{class}",
    "state": "state_{state}",
    "site": "site_{site}",
}
# Which component fields each kind of group needs (all must be present for the group to exist).
GROUP_FIELDS = {
    "label": ("label",),
    "partition": ("partition",),
    "role": ("role",),
    "role_subrole": ("role", "subrole"),
    "subrole": ("subrole",),
    "arch": ("arch",),
    "class": ("class",),
    "state": ("state",),
    "site": (),
}
# Group pattern field -> SMD component field (``partition`` comes from the memberships).
FIELD_OF = {"role": "Role", "subrole": "SubRole", "arch": "Arch", "class": "Class", "state": "State"}
RESERVED_GROUPS = frozenset(("all", "ungrouped"))
VALID_GROUP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INVALID_GROUP_CHARS_RE = re.compile(r"[^A-Za-z0-9_]")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
SITE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
HOSTNAME_SOURCES = ("hostname", "nid", "xname")
NAME_AUTHORITY = {"hostname": 0, "nid": 1, "xname": 2}

# SMD component field -> host variable suffix. Every one is set on every host (None when
# SMD omitted it: all component fields but ID and Type are omitempty).
COMPONENT_HOSTVARS = (
    ("ID", "xname"), ("Type", "type"), ("NID", "nid"), ("Role", "role"), ("SubRole", "subrole"),
    ("Arch", "arch"), ("State", "state"), ("Flag", "flag"), ("Enabled", "enabled"), ("Class", "class"),
    ("NetType", "net_type"),
)
MAX_EXAMPLES = 10
# Text that cannot hold a template: no braces, percent or hash signs, no spaces (so no Jinja delimiter and no
# "#jinja2:" override header). SMD values of this shape (xnames, MACs, addresses, roles, labels, host names) are
# marked trusted; anything else from the API stays untrusted, as 2.19 leaves all plugin data by default. Both
# template to themselves; the difference is that ``ansible-inventory --list`` prints the trusted ones as plain
# strings instead of ``{"__ansible_unsafe": ...}`` objects, which halves its output at 10,000 hosts.
PLAIN_TEXT_RE = re.compile(r"^[A-Za-z0-9_.:@/+=,-]*\Z")
REQUEST_ERRORS = (requests.exceptions.RequestException,) if requests is not None else ()
# Whatever reaches an error message is scrubbed of these, besides the known secret values (defence in depth:
# requests, for one, quotes a whole Authorization header when it refuses it).
SECRET_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s'\",;)]+"), r"\1\2<redacted>"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "<redacted token>"),
    (re.compile(r"(\w+://)[^/\s@]+@"), r"\1<redacted>@"),         # user:password@ in a URL
)


def _valid_var_name(name):
    if validate_variable_name is None:  # pragma: no cover - ansible-core < 2.19
        return bool(re.match(r"^[A-Za-z_][A-Za-z0-9_]*\Z", name))
    try:
        validate_variable_name(name)
    except AnsibleError:
        return False
    return True


class InventoryOptionError(ValueError):
    """An inventory option is wrong; the message names it and says what is expected."""


# ----------------------------------------------------------------------------------- options
def _json_option(name, value, expect):
    """An option that may be a mapping/list in YAML or a JSON string from the environment."""
    if value is None or value == "":
        return expect()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InventoryOptionError("%s must be a %s or JSON text of one (%s)" % (
                name, "mapping" if expect is dict else "list", exc))
    if not isinstance(value, expect):
        raise InventoryOptionError("%s must be a %s, got %s" % (name, "mapping" if expect is dict else "list", type(value).__name__))
    return value


def normalise_filters(filters, where="filters"):
    """Validated SMD component filters: known keys, scalar or list values, ``type`` defaulting to Node."""
    filters = _json_option(where, filters, dict)
    out = {}
    for key, value in filters.items():
        lkey = str(key).lower()
        if lkey not in COMPONENT_FILTERS:
            raise InventoryOptionError("%s has an unknown key %r; SMD component filters are %s" % (
                where, key, ", ".join(COMPONENT_FILTERS)))
        values = value if isinstance(value, (list, tuple)) else [value]
        clean = []
        for item in values:
            if isinstance(item, (dict, list)) or item is None:
                raise InventoryOptionError("%s.%s must be a value or a list of values, got %r" % (where, key, value))
            clean.append(("true" if item else "false") if isinstance(item, bool) else str(item))
        if clean:
            out[lkey] = clean
    out.setdefault("type", ["Node"])
    return out


def parse_group_names(value):
    """The name pattern of each kind of group, validated: only known fields, no attribute or index access."""
    given = _json_option("group_names", value, dict)
    unknown = sorted(set(given) - set(GROUP_KINDS))
    if unknown:
        raise InventoryOptionError("group_names has unknown kinds %s; kinds are %s" % (", ".join(unknown), ", ".join(GROUP_KINDS)))
    patterns = dict(DEFAULT_GROUP_NAMES)
    for kind, pattern in given.items():
        if not isinstance(pattern, str) or not pattern:
            raise InventoryOptionError("group_names.%s must be a non-empty string" % kind)
        allowed = set(GROUP_FIELDS[kind]) | {"site"}
        try:
            fields = [parsed[1] for parsed in string.Formatter().parse(pattern) if parsed[1] is not None]
        except ValueError as exc:
            raise InventoryOptionError("group_names.%s %r is not a valid pattern: %s" % (kind, pattern, exc))
        for field in fields:
            if field not in allowed:
                raise InventoryOptionError("group_names.%s %r uses {%s}; it may use %s" % (
                    kind, pattern, field, ", ".join("{%s}" % f for f in sorted(allowed))))
        patterns[kind] = pattern
    return patterns


def check_nid_format(fmt):
    try:
        fmt % 1
    except (TypeError, ValueError):
        raise InventoryOptionError("nid_format %r must be a printf format with one integer, such as nid%%06d" % fmt)
    return fmt


class Settings(object):
    """The options that shape the inventory, validated once."""

    def __init__(self, hostnames=HOSTNAME_SOURCES, nid_format="nid%06d", management_network="NMN", hostvars_prefix="smd_",
                 interfaces=False, group_by=("label", "partition", "role", "role_subrole", "arch", "site"),
                 group_names=None, include_labels=(), exclude_labels=()):
        unknown = [h for h in hostnames if h not in HOSTNAME_SOURCES]
        if unknown:
            raise InventoryOptionError("hostnames has %s; choose from %s" % (", ".join(unknown), ", ".join(HOSTNAME_SOURCES)))
        bad_groups = [g for g in group_by if g not in GROUP_KINDS]
        if bad_groups:
            raise InventoryOptionError("group_by has %s; choose from %s" % (", ".join(bad_groups), ", ".join(GROUP_KINDS)))
        self.hostnames = list(hostnames)
        self.nid_format = check_nid_format(nid_format)
        self.management_network = (management_network or "").lower()
        self.hostvars_prefix = hostvars_prefix or ""
        self.interfaces = bool(interfaces)
        self.group_by = [g for g in GROUP_KINDS if g in group_by]
        self.group_names = group_names or dict(DEFAULT_GROUP_NAMES)
        self.include_labels = [p.lower() for p in include_labels or ()]
        self.exclude_labels = [p.lower() for p in exclude_labels or ()]


class SiteSpec(object):
    """One site of the inventory source: its connection options, name, group prefix and filters."""

    def __init__(self, name, options, group_prefix, filters):
        self.name = name
        self.options = options
        self.group_prefix = group_prefix
        self.filters = filters

    @property
    def kind(self):
        return self.options.get("site_kind")

    @property
    def api_url(self):
        return self.options.get("api_url")

    def label(self):
        url = self.api_url
        return redact("site %r (%s)" % (self.name, url)) if url else "site %r" % self.name


# -------------------------------------------------------------------------------------- model
class SiteData(object):
    """The three raw SMD replies of one site (what the cache holds)."""

    def __init__(self, spec, components, memberships, interfaces, requests=0, seconds=0.0, cached=False):
        self.spec = spec
        self.components = components
        self.memberships = memberships
        self.interfaces = interfaces
        self.requests = requests
        self.seconds = seconds
        self.cached = cached

    def replies(self):
        return {"components": self.components, "memberships": self.memberships, "interfaces": self.interfaces}


class Model(object):
    """What goes into Ansible's inventory: hosts with variables and groups, groups with variables, and reports."""

    def __init__(self):
        self.hosts = []          # [(name, vars dict, [group names])]
        self.groups = {}         # name -> vars dict
        self.warnings = []       # readable lines, one per problem kind


def _examples(items):
    items = list(items)
    shown = ", ".join(items[:MAX_EXAMPLES])
    if len(items) > MAX_EXAMPLES:
        shown += " and %d more" % (len(items) - MAX_EXAMPLES)
    return shown


def _count(number, singular, plural):
    return "%d %s" % (number, singular if number == 1 else plural)


def convert_group_name(raw, kind):
    """A valid Ansible group name for ``raw``: invalid characters to ``_``, ``_`` before a leading digit."""
    if raw in RESERVED_GROUPS:
        return "%s_%s" % (kind, raw)
    name = INVALID_GROUP_CHARS_RE.sub("_", raw)
    if name[:1].isdigit():
        name = "_" + name
    return name


class GroupNamer(object):
    """Gives every (kind, raw name) one distinct, valid group name, and reports conversions and clashes.

    Names are assigned only once all are known, in a fixed order (valid names first, then by
    kind and raw name), so the result does not depend on the order nodes arrive in.
    """

    def __init__(self):
        self._wanted = {}   # (kind, raw) -> the SMD name(s) it comes from, for the report
        self.assigned = {}  # (kind, raw) -> final name
        self.converted = []  # (kind, raw, final)
        self.clashes = []    # (kind, raw, final, holder)

    def want(self, kind, raw, source):
        key = (kind, raw)
        if key not in self._wanted:
            self._wanted[key] = source
        return key

    def assign(self):
        kind_order = {k: i for i, k in enumerate(GROUP_KINDS)}
        keys = sorted(self._wanted, key=lambda k: (not (VALID_GROUP_RE.match(k[1]) and k[1] not in RESERVED_GROUPS),
                                                   kind_order[k[0]], k[1]))
        taken = {}
        for kind, raw in keys:
            base = raw if VALID_GROUP_RE.match(raw) and raw not in RESERVED_GROUPS else convert_group_name(raw, kind)
            name, n = base, 1
            while name in taken:
                n += 1
                name = "%s_%d" % (base, n)
            source = self._wanted[(kind, raw)]
            if name != base:
                holder = taken[base]
                self.clashes.append((kind, source, name, "%s %s" % (holder[0], self._wanted[holder])))
            elif base != raw:
                self.converted.append((kind, source, name))
            taken[name] = (kind, raw)
            self.assigned[(kind, raw)] = name
        return self.assigned

    def report(self):
        lines = []
        if self.converted:
            lines.append("%s not valid Ansible group names and were converted: %s" % (
                _count(len(self.converted), "SMD name is", "SMD names are"), _examples("%s %r -> %s" % c for c in self.converted)))
        if self.clashes:
            lines.append("%s share a group with another one and got a suffix: %s" % (
                _count(len(self.clashes), "SMD name would", "SMD names would"),
                _examples("%s %r -> %s (%s has the name)" % c for c in self.clashes)))
        return lines


def _matches(labels, patterns):
    return any(fnmatch.fnmatchcase(label, pattern) for label in labels for pattern in patterns)


def _index_interfaces(interfaces, mgmt_network):
    """ComponentID -> (management MAC, management IP, hostname, [interface dicts]), from the bare EthernetInterfaces list."""
    by_node = {}
    for iface in interfaces:
        if not isinstance(iface, dict):
            continue
        xname = iface.get("ComponentID")
        if xname:
            by_node.setdefault(xname, []).append(iface)
    out = {}
    for xname, ifaces in by_node.items():
        ifaces.sort(key=lambda i: i.get("MACAddress") or i.get("ID") or "")
        mgmt_mac = mgmt_ip = first_mac = first_ip = None
        mgmt_iface = None
        listed = []
        for iface in ifaces:
            mac = iface.get("MACAddress") or None
            addresses = iface.get("IPAddresses") or []
            for addr in addresses:
                ip = addr.get("IPAddress") if isinstance(addr, dict) else None
                if not ip:
                    continue
                network = addr.get("Network") or ""
                if mgmt_ip is None and mgmt_network and network.lower() == mgmt_network:
                    mgmt_ip, mgmt_mac, mgmt_iface = ip, mac, iface
                if first_ip is None:
                    first_ip, first_mac = ip, mac
            if first_mac is None and mac:
                first_mac = mac
            listed.append(iface)
        if mgmt_ip is None:
            mgmt_ip, mgmt_mac = first_ip, first_mac
            mgmt_iface = next((i for i in ifaces if i.get("MACAddress") == first_mac), None)
        hostname = None
        for iface in ([mgmt_iface] if mgmt_iface else []) + ifaces:
            desc = (iface.get("Description") or "").strip()
            if desc and HOSTNAME_RE.match(desc):
                hostname = desc
                break
        out[xname] = (mgmt_mac, mgmt_ip, hostname, listed)
    return out


class _PlainText(object):
    """Marks text that cannot hold a template as trusted (PLAIN_TEXT_RE), once per distinct value."""

    def __init__(self):
        self._seen = {}

    def __call__(self, value):
        # exactly str: a tagged str (a subclass) is left as it is
        if type(value) is not str:  # pylint: disable=unidiomatic-typecheck
            return value
        out = self._seen.get(value)
        if out is None:
            out = self._seen[value] = trust_as_template(value) if PLAIN_TEXT_RE.match(value) else value
        return out


def _interfaces_var(ifaces):
    result = []
    for iface in ifaces:
        addresses = [a for a in (iface.get("IPAddresses") or []) if isinstance(a, dict) and a.get("IPAddress")]
        base = {"mac": iface.get("MACAddress"), "description": iface.get("Description") or ""}
        if not addresses:
            result.append(dict(base, ip=None, network=None))
        for addr in addresses:
            result.append(dict(base, ip=addr.get("IPAddress"), network=addr.get("Network") or None))
    return result


def _nid_key(component):
    nid = component.get("NID")
    return (not isinstance(nid, int), nid if isinstance(nid, int) else 0, component.get("ID") or "")


class _Node(object):
    __slots__ = ("site", "component", "labels", "partition", "mac", "ip", "hostname", "ifaces", "candidates", "choice", "name")


def _site_nodes(data, settings):
    """The nodes of one site that pass the label selection, joined with their memberships and interfaces.

    Also returns the names (hostname or NID name) that several nodes of the whole reply share: those name
    no node, whatever the label selection keeps, so a host's name does not depend on which others are selected.
    """
    spec = data.spec
    memberships = {}
    for entry in data.memberships or []:
        if isinstance(entry, dict) and entry.get("id"):
            memberships[entry["id"]] = entry
    interfaces = _index_interfaces(data.interfaces or [], settings.management_network)
    components = []
    seen = set()
    for comp in sorted((c for c in data.components or [] if isinstance(c, dict) and c.get("ID")), key=_nid_key):
        if comp["ID"] not in seen:
            seen.add(comp["ID"])
            components.append(comp)
    owners = {}
    for comp in components:
        hostname = interfaces.get(comp["ID"], (None, None, None, None))[2]
        if hostname:
            owners.setdefault(("hostname", hostname), set()).add(comp["ID"])
        if isinstance(comp.get("NID"), int):
            owners.setdefault(("nid", settings.nid_format % comp["NID"]), set()).add(comp["ID"])
    shared = {key: len(xnames) for key, xnames in owners.items() if len(xnames) > 1}
    nodes = []
    for comp in components:
        xname = comp["ID"]
        member = memberships.get(xname) or {}
        labels = sorted({str(lbl) for lbl in member.get("groupLabels") or [] if lbl})
        if settings.include_labels and not _matches(labels, settings.include_labels):
            continue
        if settings.exclude_labels and _matches(labels, settings.exclude_labels):
            continue
        node = _Node()
        node.site = spec
        node.component = comp
        node.labels = labels
        node.partition = member.get("partitionName") or None
        node.mac, node.ip, node.hostname, node.ifaces = interfaces.get(xname, (None, None, None, []))
        nodes.append(node)
    return nodes, shared


def _name_candidates(node, settings, shared):
    out = []
    for source in settings.hostnames:
        if source == "hostname" and node.hostname:
            out.append(("hostname", node.hostname))
        elif source == "nid" and isinstance(node.component.get("NID"), int):
            out.append(("nid", settings.nid_format % node.component["NID"]))
        elif source == "xname":
            out.append(("xname", node.component["ID"]))
    out = [c for c in out if c not in shared]
    if not out or out[-1][0] != "xname":
        out.append(("xname", node.component["ID"]))
    seen, unique = set(), []
    for cand in out:
        if cand[1] not in seen:
            seen.add(cand[1])
            unique.append(cand)
    return unique


def _choose_site_names(nodes, settings, spec, shared, warnings):
    """Each node's first candidate name that no other node of the site also has; the xname when none is left."""
    for node in nodes:
        node.candidates = _name_candidates(node, settings, shared)
        node.choice = 0
    used = {key: count for key, count in shared.items() if key[0] in settings.hostnames}
    while True:
        by_name = {}
        for node in nodes:
            by_name.setdefault(node.candidates[node.choice][1], []).append(node)
        moved = False
        for name, holders in by_name.items():
            if len(holders) < 2:
                continue
            # The name stays with the one holder that has it from the most authoritative source (xname, then NID,
            # then a free-text Description), if there is exactly one; the others take their next preference.
            ranks = [NAME_AUTHORITY[n.candidates[n.choice][0]] for n in holders]
            keeper = holders[ranks.index(max(ranks))] if ranks.count(max(ranks)) == 1 else None
            for node in holders:
                if node is not keeper and node.choice < len(node.candidates) - 1:
                    key = (node.candidates[node.choice][0], name)
                    used[key] = max(used.get(key, 0), len(holders))
                    node.choice += 1
                    moved = True
        if not moved:
            break
    for node in nodes:
        node.name = node.candidates[node.choice][1]
    if used:
        warnings.append("%s: %s shared by several nodes and not used for them (they took their next "
                        "preference in hostnames): %s" % (spec.label(), _count(len(used), "name is", "names are"), _examples(
                            "%s %r (%d nodes)" % (src, name, count) for (src, name), count in sorted(used.items()))))


def _qualify_across_sites(nodes, warnings):
    """Hosts from several sites that got the same name are all named ``<name>.<site>``, so no site wins silently."""
    by_name = {}
    for node in nodes:
        by_name.setdefault(node.name, []).append(node)
    renamed = []
    taken = set(by_name)
    for name, holders in sorted(by_name.items()):
        if len({n.site.name for n in holders}) < 2:
            continue
        new_names = []
        for node in holders:
            new = "%s.%s" % (name, node.site.name)
            suffix = 1
            while new in taken:
                suffix += 1
                new = "%s.%s_%d" % (name, node.site.name, suffix)
            taken.add(new)
            node.name = new
            new_names.append(new)
        renamed.append("%s -> %s" % (name, ", ".join(new_names)))
    if renamed:
        warnings.append("%s used by nodes of several sites; those hosts are named <name>.<site>: %s" % (
            _count(len(renamed), "host name is", "host names are"), _examples(renamed)))


def build_model(sites_data, settings):
    """The inventory the sites' raw replies describe: hosts, their variables and groups, and warnings."""
    model = Model()
    nodes = []
    for data in sites_data:
        site_nodes, shared = _site_nodes(data, settings)
        _choose_site_names(site_nodes, settings, data.spec, shared, model.warnings)
        nodes.extend(site_nodes)
    if len(sites_data) > 1:
        _qualify_across_sites(nodes, model.warnings)

    prefix = settings.hostvars_prefix
    patterns = settings.group_names
    namer = GroupNamer()
    site_group_keys = {}
    # A group's key depends only on the site and the few fields its pattern uses, which most hosts share:
    # worked out once per distinct combination, not once per host.
    key_of = {}

    host_group_keys = []
    for node in nodes:
        comp = node.component
        spec = node.site
        keys = []
        for kind in settings.group_by:
            if kind == "label":
                for label in node.labels:
                    cached = key_of.get((spec.name, "label", label))
                    if cached is None:
                        name = spec.group_prefix + patterns["label"].format(site=spec.name, label=label)
                        cached = key_of[(spec.name, "label", label)] = namer.want("label", name, label)
                    keys.append(cached)
                continue
            fields = GROUP_FIELDS[kind]
            found = tuple(node.partition if f == "partition" else comp.get(FIELD_OF[f]) for f in fields)
            if not all(found):
                continue
            cached = key_of.get((spec.name, kind, found))
            if cached is None:
                values = dict(zip(fields, found), site=spec.name)
                source = "/".join(str(v) for v in found) if fields else spec.name
                cached = key_of[(spec.name, kind, found)] = namer.want(
                    kind, spec.group_prefix + patterns[kind].format(**values), source)
                if kind == "site":
                    site_group_keys[spec.name] = (cached, spec)
            keys.append(cached)
        host_group_keys.append(keys)

    names = namer.assign()
    model.warnings.extend(namer.report())
    for key in names.values():
        model.groups.setdefault(key, {})
    for key, spec in site_group_keys.values():
        # (never user:password@ of a URL: the variable is printed by ansible-inventory --list)
        model.groups[names[key]] = {"vcluster_site_kind": spec.kind, "vcluster_api_url": redact(spec.api_url or "")}

    component_vars = [(field, prefix + var) for field, var in COMPONENT_HOSTVARS]
    mac_var, ip_var, hostname_var, ifaces_var = prefix + "mac", prefix + "ip", prefix + "hostname", prefix + "interfaces"
    plain = _PlainText()
    for node, keys in zip(nodes, host_group_keys):
        comp = node.component
        ip = plain(node.ip)
        hostvars = {"ansible_host": ip} if ip else {}
        for field, var in component_vars:
            hostvars[var] = plain(comp.get(field))
        hostvars[mac_var] = plain(node.mac)
        hostvars[ip_var] = ip
        hostvars[hostname_var] = plain(node.hostname)
        if settings.interfaces:
            hostvars[ifaces_var] = _interfaces_var(node.ifaces)
        hostvars["vcluster_labels"] = [plain(label) for label in node.labels]
        hostvars["vcluster_partition"] = plain(node.partition)
        hostvars["vcluster_site"] = node.site.name
        groups = []
        for key in keys:
            name = names[key]
            if name not in groups:
                groups.append(name)
        model.hosts.append((node.name, hostvars, groups))
    return model


# ----------------------------------------------------------------------------------- fetching
def cache_digest(spec):
    """What shapes a site's SMD queries (never credentials): kind, SMD URL and filters, plus the cache format."""
    service_urls = spec.options.get("service_urls") or {}
    if isinstance(service_urls, str):
        try:
            service_urls = json.loads(service_urls)
        except ValueError:
            service_urls = {"raw": service_urls}
    shaped = {
        "format": CACHE_FORMAT,
        "kind": spec.kind,
        "api_url": (spec.api_url or "").rstrip("/"),
        "smd": (service_urls or {}).get("smd"),
        "filters": spec.filters,
    }
    return hashlib.sha256(json.dumps(shaped, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def fetch_site(spec, retries=3, clients_factory=SiteClients.from_options):
    """The three SMD replies of one site, in three requests (four with a client-credentials token)."""
    started = time.monotonic()
    clients = clients_factory(spec.options, retries=retries)
    smd = clients.smd
    filters = spec.filters
    try:
        components = smd.components(**filters)
        memberships = smd.memberships(**filters)
        interfaces = smd.ethernet_interfaces(Type=filters.get("type") or ["Node"])
    except (ApiError, ValueError) + REQUEST_ERRORS as exc:
        raise ApiError(redact(str(exc), _secrets_of(spec.options, clients.token_source))) from None
    for what, value in (("State/Components", components), ("memberships", memberships), ("Inventory/EthernetInterfaces", interfaces)):
        if not isinstance(value, list):
            raise ApiError("SMD GET /%s: the reply is not the list SMD returns (got %s); is api_url an SMD gateway?" % (
                what, type(value).__name__))
    count = clients.transport.request_count + (getattr(clients.token_source, "fetch_count", 0) or 0)
    return SiteData(spec, components, memberships, interfaces, requests=count, seconds=time.monotonic() - started)


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while the replies are decoded and the hosts built.

    Those make hundreds of thousands of objects and no cycles; each collection the allocations trigger walks
    all of them again, which took about a third of the plugin's own time at 10,000 hosts.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def redact(text, secrets=()):
    """``text`` without the given secret values, bearer/basic credentials or anything shaped like a JWT."""
    for secret in secrets:
        if isinstance(secret, str) and len(secret.strip()) >= 4:
            text = text.replace(secret.strip(), "<redacted>")
    for pattern, replacement in SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _secrets_of(options, token_source=None):
    found = [options.get("token"), options.get("client_secret")]
    if token_source is not None:
        # the values the token sources of _auth.py hold (StaticToken.value, FileToken._value, ClientCredentials._token)
        found += [getattr(token_source, attr, None) for attr in ("value", "_value", "_token", "client_secret")]
    return [s for s in found if isinstance(s, str)]


def _error_hint(exc):
    text = str(exc)
    if "cannot reach" in text and "token endpoint" not in text:
        return "; check api_url and that the site's API gateway is up and reachable from this host"
    return ""


# ------------------------------------------------------------------------------------- plugin
class SmdInventoryBase(BaseInventoryPlugin, Constructable, Cacheable):
    """Shared by hpc.vcluster.openchami and hpc.vcluster.csm; subclasses set NAME, SITE_KIND and SUFFIXES."""

    NAME = None
    SITE_KIND = None
    SUFFIXES = ()
    # The short names accepted in ``plugin:`` next to the FQCN (AWX trips on mismatches).
    SHORT_NAMES = ()

    def __init__(self):
        super(SmdInventoryBase, self).__init__()
        self.last_stats = []

    # -- discovery -------------------------------------------------------------------
    def verify_file(self, path):
        """Our suffixes, or any YAML file whose ``plugin:`` names this plugin (e.g. ``openchami.example.yml``)."""
        if not super(SmdInventoryBase, self).verify_file(path):
            return False
        if path.endswith(self.SUFFIXES):
            return True
        if not path.endswith((".yml", ".yaml")):
            return False
        names = [self.NAME] + list(self.SHORT_NAMES)
        pattern = re.compile(r"^plugin:\s*[\"']?(%s)[\"']?\s*(#.*)?$" % "|".join(re.escape(n) for n in names), re.M)
        try:
            with open(path, "r") as handle:
                head = handle.read(8192)
        except (IOError, OSError, UnicodeDecodeError):
            return False
        return bool(pattern.search(head))

    # -- options ---------------------------------------------------------------------
    def _fail(self, message):
        """One line, naming the plugin (the message names the site and what to fix); no chained traceback."""
        raise AnsibleParserError(" ".join(("%s: %s" % (self.NAME, message)).split())) from None

    def _template(self, value):
        """Render a string option that holds a template (from the trusted config file); anything else as is."""
        if isinstance(value, str) and "{{" in value:
            return self.templar.template(value)
        return value

    def _settings(self):
        settings = self._read_settings()
        # The hosts' variables are written straight into the inventory (see _populate), so their names are
        # checked here, once, as Host.set_variable would check each of them.
        suffixes = [var for _field, var in COMPONENT_HOSTVARS] + ["mac", "ip", "hostname", "interfaces"]
        bad = [settings.hostvars_prefix + suffix for suffix in suffixes
               if not _valid_var_name(settings.hostvars_prefix + suffix)]
        if bad:
            raise InventoryOptionError("hostvars_prefix %r makes invalid variable names (%s); use letters, digits and _, "
                                       "not starting with a digit" % (settings.hostvars_prefix, ", ".join(bad[:3])))
        return settings

    def _read_settings(self):
        return Settings(
            hostnames=self.get_option("hostnames") or list(HOSTNAME_SOURCES),
            nid_format=self.get_option("nid_format"),
            management_network=self.get_option("management_network"),
            hostvars_prefix=self.get_option("hostvars_prefix"),
            interfaces=self.get_option("interfaces"),
            group_by=self.get_option("group_by") or [],
            group_names=parse_group_names(self.get_option("group_names")),
            include_labels=self.get_option("include_labels") or [],
            exclude_labels=self.get_option("exclude_labels") or [],
        )

    def _site_option(self, name):
        """A site option, with an empty environment variable counting as unset.

        Credential injectors (AWX) may set a variable to an empty string, which ansible-core would read as
        validate_certs false (TLS verification off!) or ca_path = the current directory.
        """
        value, origin = self.get_option_and_origin(name)
        if isinstance(origin, str) and origin.startswith("env: ") and not os.environ.get(origin[5:], "").strip():
            return None
        return self._template(value)

    def _site_specs(self):
        """One SiteSpec per site: the ``sites`` entries, or the top-level options as the only site."""
        top = {opt: self._site_option(opt) for opt in SITE_OPTIONS}
        top["site_kind"] = top.get("site_kind") or self.SITE_KIND
        top_filters = normalise_filters(self.get_option("filters"))
        group_prefix = self.get_option("group_prefix") or ""
        entries = _json_option("sites", self.get_option("sites"), list)
        if not entries:
            name = top.get("site_name") or top["site_kind"]
            top["site_name"] = name
            return [SiteSpec(name, top, group_prefix, top_filters)]
        specs, names = [], set()
        for index, entry in enumerate(entries):
            where = "sites[%d]" % index
            if not isinstance(entry, dict):
                raise InventoryOptionError("%s must be a mapping with at least name and api_url" % where)
            unknown = sorted(set(entry) - SITE_ENTRY_KEYS)
            if unknown:
                raise InventoryOptionError("%s has unknown keys %s; allowed: %s" % (where, ", ".join(unknown), ", ".join(sorted(SITE_ENTRY_KEYS))))
            name = entry.get("name") or entry.get("site_name")
            if not name or not isinstance(name, str) or not SITE_NAME_RE.match(name):
                raise InventoryOptionError("%s needs a name (letters, digits, '-', '_', '.'), got %r" % (where, name))
            if name in names:
                raise InventoryOptionError("%s: the site name %r is used twice; names must be unique" % (where, name))
            names.add(name)
            options = {opt: self._template(entry.get(opt)) for opt in SITE_OPTIONS}
            for opt in ("token_file", "ca_path"):          # type path at the top level; the same here
                if isinstance(options.get(opt), str) and options[opt]:
                    options[opt] = os.path.abspath(os.path.expanduser(options[opt]))
            for opt in INHERITED_SITE_OPTIONS:
                if options.get(opt) is None:
                    options[opt] = top.get(opt)
            options["site_kind"] = options.get("site_kind") or self.SITE_KIND
            options["site_name"] = name
            if options["site_kind"] not in SITE_KINDS:
                raise InventoryOptionError("%s (%s): site_kind must be one of %s" % (where, name, ", ".join(SITE_KINDS)))
            prefix = entry.get("group_prefix", entry.get("prefix"))
            filters = normalise_filters(entry["filters"], "%s.filters" % where) if entry.get("filters") is not None else top_filters
            specs.append(SiteSpec(name, options, group_prefix if prefix is None else str(prefix), filters))
        return specs

    def _constructed_options(self):
        """compose / groups / keyed_groups, decoding (and trusting, like the config file) JSON from the environment."""
        out = {}
        for opt, expect in (("compose", dict), ("groups", dict), ("keyed_groups", list)):
            value, origin = self.get_option_and_origin(opt)
            from_env = isinstance(value, str)
            value = _json_option(opt, value, expect)
            if from_env and value:
                if expect is dict:
                    value = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in value.items()}
                else:
                    value = [dict(k, key=trust_as_template(k["key"])) if isinstance(k, dict) and isinstance(k.get("key"), str) else k
                             for k in value]
                self.display.vvv("%s: %s from %s" % (self.NAME, opt, origin))
            out[opt] = value
        return out

    # -- cache -----------------------------------------------------------------------
    def _cache_key(self, base, spec):
        return "%s_%s_%s" % (base, re.sub(r"[^A-Za-z0-9_.-]", "_", spec.name), cache_digest(spec))

    def _from_cache(self, key, spec):
        try:
            entry = self._cache[key]
        except KeyError:
            return None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or not isinstance(entry.get("replies"), str):
            return None
        try:
            replies = json.loads(entry["replies"])
        except ValueError:
            return None
        return SiteData(spec, replies.get("components"), replies.get("memberships"), replies.get("interfaces"), cached=True)

    def _to_cache(self, key, data):
        # The replies are stored as one JSON text: the cache plugin then encodes and decodes a single string instead
        # of walking 10,000 nested objects (the 2.19 loader tags every value it decodes).
        self._cache[key] = {"format": CACHE_FORMAT, "site": data.spec.name, "api_url": data.spec.api_url,
                            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "replies": json.dumps(data.replies(), separators=(",", ":"))}

    # -- the run ---------------------------------------------------------------------
    def _load_sites(self, specs, path, cache, retries):
        use_cache = bool(self.get_option("cache"))
        read_cache = use_cache and cache
        base_key = self.get_cache_key(path) if use_cache else None
        results, to_fetch = {}, []
        for spec in specs:
            data = None
            if read_cache:
                data = self._from_cache(self._cache_key(base_key, spec), spec)
            if data is None:
                to_fetch.append(spec)
            else:
                results[spec.name] = data

        def one(spec):
            try:
                return fetch_site(spec, retries=retries)
            except (ApiError, SiteError, ValueError) + REQUEST_ERRORS as exc:
                return redact("%s: %s%s" % (spec.label(), exc, _error_hint(exc)), _secrets_of(spec.options))

        if len(to_fetch) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(to_fetch))) as pool:
                fetched = list(pool.map(one, to_fetch))
        else:
            fetched = [one(spec) for spec in to_fetch]
        errors = [f for f in fetched if isinstance(f, str)]
        if errors:
            self._fail("; ".join(errors))
        for data in fetched:
            results[data.spec.name] = data
            if use_cache:
                self._to_cache(self._cache_key(base_key, data.spec), data)
        return [results[spec.name] for spec in specs]

    def parse(self, inventory, loader, path, cache=True):
        super(SmdInventoryBase, self).parse(inventory, loader, path, cache=cache)
        # Accept the short name in ``plugin:`` too (core only accepts the names the plugin was loaded by).
        names = list(getattr(self, "_redirected_names", None) or [self.NAME])
        self._redirected_names = names + [n for n in (self.NAME,) + tuple(self.SHORT_NAMES) if n not in names]
        self._read_config_data(path)
        try:
            settings = self._settings()
            specs = self._site_specs()
            constructed = self._constructed_options()
            retries = int(self.get_option("retries"))
        except (InventoryOptionError, SiteError) as exc:
            error = "%s: %s" % (path, exc)
        else:
            error = None
        if error:
            self._fail(error)
        started = time.monotonic()
        with _gc_paused():
            sites_data = self._load_sites(specs, path, cache, retries)
            model = build_model(sites_data, settings)
            self._populate(model, constructed)
        self.last_stats = []
        for data in sites_data:
            hosts = sum(1 for h in model.hosts if h[1]["vcluster_site"] == data.spec.name)
            stat = {"site": data.spec.name, "hosts": hosts, "requests": data.requests, "cached": data.cached,
                    "seconds": round(data.seconds, 3)}
            self.last_stats.append(stat)
            if data.cached:
                self.display.vvv("%s: %s: %d hosts from the cache (0 HTTP requests)" % (self.NAME, data.spec.label(), hosts))
            else:
                self.display.vvv("%s: %s: %d hosts from %d HTTP requests in %.2fs" % (
                    self.NAME, data.spec.label(), hosts, data.requests, data.seconds))
        self.display.vvv("%s: %d hosts, %d groups, %d HTTP requests in all; inventory built in %.2fs" % (
            self.NAME, len(model.hosts), len(model.groups), sum(d.requests for d in sites_data), time.monotonic() - started))
        for line in model.warnings:
            self.display.warning("%s: %s" % (self.NAME, line))

    def _populate(self, model, constructed):
        """Hosts, groups and variables into Ansible's inventory.

        Groups and their variables go through the public API. A host's variables are put in its ``vars`` in one
        update, and it joins its groups through ``Group.add_host``: the wrapper ansible-core 2.19 puts around the
        inventory walks and copies every value given to ``set_variable``, which was two thirds of the plugin's
        time at 10,000 hosts. Nothing is lost by it: the values are JSON from the API (str, int, bool, None,
        lists), left untrusted, and the names were checked when the options were read.
        """
        inventory = self.inventory
        for group, group_vars in model.groups.items():
            inventory.add_group(group)
            for key, value in group_vars.items():
                inventory.set_variable(group, key, value)
        compose, groups, keyed = constructed["compose"], constructed["groups"], constructed["keyed_groups"]
        use_constructed = bool(compose or groups or keyed)
        strict = self.get_option("strict")
        add_host, hosts, group_objs = inventory.add_host, inventory.hosts, inventory.groups
        last = None
        for name, hostvars, host_groups in model.hosts:
            add_host(name)
            host = hosts[name]
            if isinstance(host.vars, dict):
                host.vars.update(hostvars)
            else:  # pragma: no cover - not so in ansible-core 2.19
                for key, value in hostvars.items():
                    inventory.set_variable(name, key, value)
            for group in host_groups:
                group_objs[group].add_host(host)
                last = (group, name)
            if use_constructed:
                self._set_composite_vars(compose, hostvars, name, strict=strict)
                self._add_host_to_composed_groups(groups, hostvars, name, strict=strict)
                self._add_host_to_keyed_groups(keyed, hostvars, name, strict=strict)
        if last:
            # once through the public call, which also drops the inventory's cached group -> hosts map
            inventory.add_child(*last)
