# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the hpc.vcluster.slurm_nodes and slurm_node_lines filters."""
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.hpc.vcluster.plugins.filter import slurm as plugin


def facts(hostname, vcpus=8, sockets=2, cores=4, threads=1, mem=16000, ipv4="10.0.0.1"):
    return {"ansible_facts": {"hostname": hostname, "processor_vcpus": vcpus, "processor_count": sockets,
                              "processor_cores": cores, "processor_threads_per_core": threads,
                              "memtotal_mb": mem, "default_ipv4": {"address": ipv4}}}


HOSTVARS = {
    "x1000c0s0b0n0": facts("nid000001"),
    "x1000c0s1b0n0": facts("nid000002"),
    "x1000c0s2b0n0": facts("nid000003", vcpus=4, sockets=1, mem=8000, ipv4="10.0.0.3"),
    "bare": {},
}


def test_filters_are_registered():
    filters = plugin.FilterModule().filters()
    assert set(filters) == {"slurm_nodes", "slurm_node_lines"}


def test_each_node_gets_its_own_shape():
    nodes = plugin.slurm_nodes(["x1000c0s2b0n0", "x1000c0s0b0n0"], HOSTVARS)
    assert [n["name"] for n in nodes] == ["nid000001", "nid000003"]
    assert nodes[0]["params"] == {"CPUs": "8", "Sockets": "2", "CoresPerSocket": "4", "ThreadsPerCore": "1",
                                  "RealMemory": "15200"}
    assert nodes[1]["params"]["CPUs"] == "4"
    assert nodes[1]["params"]["Sockets"] == "1"
    assert nodes[1]["params"]["RealMemory"] == "7600"
    assert all(n["problems"] == [] for n in nodes)


def test_inconsistent_topology_keeps_cpus_only():
    hv = {"h": facts("h", vcpus=6, sockets=1, cores=4, threads=1)}
    (node,) = plugin.slurm_nodes(["h"], hv)
    assert node["params"] == {"CPUs": "6", "RealMemory": "15200"}


def test_override_topology_replaces_facts_topology():
    nodes = plugin.slurm_nodes(["x1000c0s0b0n0"], HOSTVARS, overrides={"x1000c0s0b0n0": {"CPUs": 2, "RealMemory": 1000}})
    assert nodes[0]["params"] == {"CPUs": "2", "RealMemory": "1000"}


def test_layers_and_null_removes():
    nodes = plugin.slurm_nodes(
        ["x1000c0s0b0n0", "x1000c0s1b0n0"], HOSTVARS,
        defaults={"Features": ["gpu", "ib"], "Weight": 10},
        overrides={"x1000c0s1b0n0": {"Weight": None, "Gres": "gpu:4"}}, memory_fraction=1)
    first, second = nodes
    assert first["params"]["Features"] == "gpu,ib"
    assert first["params"]["Weight"] == "10"
    assert first["params"]["RealMemory"] == "16000"
    assert "Weight" not in second["params"]
    assert second["params"]["Gres"] == "gpu:4"
    assert list(second["params"])[:5] == ["CPUs", "Sockets", "CoresPerSocket", "ThreadsPerCore", "RealMemory"]


def test_host_without_facts_is_a_problem_unless_fully_overridden():
    (node,) = plugin.slurm_nodes(["bare"], HOSTVARS)
    assert node["name"] is None
    assert any("no facts" in p for p in node["problems"])
    assert any("no CPUs" in p for p in node["problems"])
    (node,) = plugin.slurm_nodes(["bare"], HOSTVARS, overrides={"bare": {"NodeName": "n9", "CPUs": 1, "RealMemory": 100}})
    assert node["name"] == "n9"
    assert node["problems"] == []
    assert "NodeName" not in node["params"]


def test_unknown_host_is_a_problem():
    (node,) = plugin.slurm_nodes(["ghost"], HOSTVARS)
    assert node["problems"]


def test_addresses():
    nodes = plugin.slurm_nodes(["x1000c0s2b0n0"], HOSTVARS, address="default_ipv4")
    assert list(nodes[0]["params"])[0] == "NodeAddr"
    assert nodes[0]["params"]["NodeAddr"] == "10.0.0.3"
    hv = {"h": dict(facts("h"), ansible_host="192.0.2.7")}
    assert plugin.slurm_nodes(["h"], hv, address="ansible_host")[0]["params"]["NodeAddr"] == "192.0.2.7"
    hv = {"h": facts("h")}
    hv["h"]["ansible_facts"].pop("default_ipv4")
    assert plugin.slurm_nodes(["h"], hv, address="default_ipv4")[0]["problems"]
    with pytest.raises(AnsibleFilterError, match="address must be one of"):
        plugin.slurm_nodes(["h"], hv, address="dns")


def test_duplicate_names_are_problems():
    hv = {"a": facts("same"), "b": facts("same")}
    nodes = plugin.slurm_nodes(["a", "b"], hv)
    assert all("also the name of" in n["problems"][0] for n in nodes)


@pytest.mark.parametrize("bad", [{"Weight": True}, {"Features": "a b"}, {"Gres": ""}])
def test_bad_values_fail(bad):
    with pytest.raises(AnsibleFilterError, match="x1000c0s0b0n0"):
        plugin.slurm_nodes(["x1000c0s0b0n0"], HOSTVARS, overrides={"x1000c0s0b0n0": bad})


def test_override_must_be_a_dict():
    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        plugin.slurm_nodes(["x1000c0s0b0n0"], HOSTVARS, overrides={"x1000c0s0b0n0": "CPUs=2"})


def test_lines_fold_identical_nodes():
    nodes = plugin.slurm_nodes(list(HOSTVARS)[:3], HOSTVARS)
    lines = plugin.slurm_node_lines(nodes)
    assert lines == [
        "NodeName=nid[000001-000002] CPUs=8 Sockets=2 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=15200",
        "NodeName=nid000003 CPUs=4 Sockets=1 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=7600",
    ]
    assert plugin.slurm_node_lines(list(reversed(nodes))) == lines


def test_lines_keep_nodes_with_addresses_apart():
    nodes = plugin.slurm_nodes(["x1000c0s0b0n0", "x1000c0s1b0n0"], HOSTVARS, address="default_ipv4")
    lines = plugin.slurm_node_lines(nodes)
    assert len(lines) == 2
    assert lines[0].startswith("NodeName=nid000001 NodeAddr=10.0.0.1 CPUs=8")


def test_lines_reject_foreign_entries(monkeypatch):
    with pytest.raises(AnsibleFilterError, match="not an entry"):
        plugin.slurm_node_lines([{"params": {}}])
    monkeypatch.setattr(plugin, "_hostlist", None)
    with pytest.raises(AnsibleFilterError, match="python-hostlist"):
        plugin.slurm_node_lines([])
