# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slurm node table and NodeName lines for the hpc.vcluster.slurm role.

The documentation of each filter is in ``slurm_nodes.yml`` and ``slurm_node_lines.yml``
next to this file.
"""
from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

try:
    import hostlist as _hostlist
except ImportError:  # pragma: no cover - the unit tests patch _hostlist to None instead
    _hostlist = None

#: NodeName parameters that describe the CPU topology, in slurm.conf's order.
TOPOLOGY = ("CPUs", "Boards", "SocketsPerBoard", "Sockets", "CoresPerSocket", "ThreadsPerCore")
#: The order of the first parameters on a NodeName line; the others follow sorted.
ORDER = ("NodeAddr", "NodeHostname", "Port") + TOPOLOGY + ("RealMemory",)
ADDRESS_MODES = ("hostname", "default_ipv4", "ansible_host")


def _get(mapping, key, default=None):
    """``mapping[key]`` for dicts and Ansible's HostVars alike."""
    try:
        if key in mapping:
            return mapping[key]
    except TypeError:
        pass
    return default


def _value(key, value, host):
    """A NodeName parameter value as slurm.conf writes it."""
    if isinstance(value, bool):
        raise AnsibleFilterError(f"hpc.vcluster.slurm_nodes: {host}: {key}={value!r}: booleans are not NodeName values")
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if not text or any(ch.isspace() for ch in text):
        raise AnsibleFilterError(
            f"hpc.vcluster.slurm_nodes: {host}: {key}={text!r} is empty or contains white space")
    return text


def _layer(params, host, what):
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise AnsibleFilterError(f"hpc.vcluster.slurm_nodes: {what} must be a dict of NodeName parameters, "
                                 f"got {type(params).__name__} for {host}")
    return dict(params)


def _over(base, layer):
    """``base`` updated with ``layer``; a layer with topology keys replaces the topology."""
    out = dict(base)
    if any(key in layer for key in TOPOLOGY):
        for key in TOPOLOGY:
            out.pop(key, None)
    for key, value in layer.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _ordered(params):
    first = [key for key in ORDER if key in params]
    rest = sorted(key for key in params if key not in ORDER)
    return {key: params[key] for key in first + rest}


def slurm_nodes(hosts, hostvars, defaults=None, overrides=None, memory_fraction=0.95, address="hostname"):
    """One entry per compute host: its Slurm node name, NodeName parameters and problems."""
    if address not in ADDRESS_MODES:
        raise AnsibleFilterError(f"hpc.vcluster.slurm_nodes: address must be one of {', '.join(ADDRESS_MODES)}, "
                                 f"got {address!r}")
    try:
        fraction = float(memory_fraction)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"hpc.vcluster.slurm_nodes: memory_fraction {memory_fraction!r} is not a number") from exc
    overrides = _layer(overrides, "(all)", "overrides")
    entries = []
    for host in hosts:
        hvars = _get(hostvars, host, {}) or {}
        facts = _get(hvars, "ansible_facts", {}) or {}
        override = _layer(overrides.get(host), host, f"overrides[{host!r}]")
        problems = []
        shape = {}
        vcpus = _get(facts, "processor_vcpus")
        if vcpus:
            sockets = _get(facts, "processor_count")
            cores = _get(facts, "processor_cores")
            threads = _get(facts, "processor_threads_per_core")
            shape["CPUs"] = int(vcpus)
            if sockets and cores and threads and int(sockets) * int(cores) * int(threads) == int(vcpus):
                shape.update(Sockets=int(sockets), CoresPerSocket=int(cores), ThreadsPerCore=int(threads))
        memtotal = _get(facts, "memtotal_mb")
        if memtotal:
            shape["RealMemory"] = max(1, int(int(memtotal) * fraction))
        params = _over(_over(shape, _layer(defaults, host, "defaults")), override)
        name = params.pop("NodeName", None) or _get(facts, "hostname")
        if not name:
            problems.append("no facts (unreachable?) and no NodeName in its override")
        for key in ("CPUs", "RealMemory"):
            if key not in params:
                problems.append(f"no {key} (no facts and none in the defaults or its override)")
        if "NodeAddr" not in params and address != "hostname":
            if address == "default_ipv4":
                addr = _get(_get(facts, "default_ipv4", {}) or {}, "address")
                if addr:
                    params["NodeAddr"] = addr
                else:
                    problems.append("no default IPv4 address in its facts (slurm_node_address is default_ipv4)")
            else:
                params["NodeAddr"] = _get(hvars, "ansible_host") or host
        rendered = {key: _value(key, value, host) for key, value in params.items()}
        entries.append({"host": host, "name": str(name) if name else None,
                        "params": _ordered(rendered), "problems": problems})
    names = {}
    for entry in entries:
        if entry["name"]:
            names.setdefault(entry["name"], []).append(entry["host"])
    for entry in entries:
        others = [h for h in names.get(entry["name"], []) if h != entry["host"]]
        if others:
            entry["problems"].append(f"node name {entry['name']} is also the name of {', '.join(others)}")
    return sorted(entries, key=lambda entry: (entry["name"] or "", entry["host"]))


def slurm_node_lines(nodes):
    """NodeName lines: nodes with the same parameters share a line (hostlist expression)."""
    if _hostlist is None:
        raise AnsibleFilterError("the python-hostlist library is not installed on the Ansible controller "
                                 "(pip install python-hostlist); the hpc.vcluster.slurm_node_lines filter needs it")
    groups = {}
    for node in nodes:
        if not isinstance(node, Mapping) or not node.get("name"):
            raise AnsibleFilterError(f"hpc.vcluster.slurm_node_lines: {node!r} is not an entry of hpc.vcluster.slurm_nodes")
        params = dict(node.get("params") or {})
        # A node with its own address keeps its own line.
        key = (node["name"],) if "NodeAddr" in params else tuple(params.items())
        groups.setdefault(key, {"names": [], "params": params})["names"].append(node["name"])
    lines = []
    for group in groups.values():
        expression = _hostlist.collect_hostlist(group["names"])
        words = [f"NodeName={expression}"] + [f"{k}={v}" for k, v in group["params"].items()]
        lines.append((sorted(group["names"])[0], " ".join(words)))
    return [line for _first, line in sorted(lines)]


class FilterModule:
    """Slurm node filters."""

    def filters(self):
        return {
            "slurm_nodes": slurm_nodes,
            "slurm_node_lines": slurm_node_lines,
        }
