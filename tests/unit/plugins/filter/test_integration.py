# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hpc.vcluster.vcluster_integration_copy and vcluster_junit: the integration pipeline's copy and results."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.hpc.vcluster.plugins.filter.integration import vcluster_integration_copy, vcluster_junit

VALIDATOR = {"reframe_index_url": "http://10.252.0.2/simple/"}


def demo(**more):
    out = {"apiVersion": "hpc.vcluster/v1", "name": "demo", "description": "demo",
           "nodes": {"service": {"count": 1, "select": {"role": "Service"}},
                     "compute": {"count": 4, "select": {"role": "Compute", "arch": "X86"}}},
           "image": {"name": "slurm-node", "tag": "1", "recipe": "../images/slurm-node.yml"},
           "network": {"vlan": 210},
           "vservices": [{"name": "slurm", "config": {}}]}
    out.update(more)
    return out


def errors_of(manifest, **kwargs):
    with pytest.raises(AnsibleFilterError) as exc:
        vcluster_integration_copy(manifest, **kwargs)
    return str(exc.value)


def test_the_copy_of_demo():
    source = demo()
    out = vcluster_integration_copy(source, "/site/vclusters", vlan=211, validator_config=VALIDATOR)
    assert out["name"] == "demo_it"
    assert out["nodes"] == {"service": {"count": 1, "select": {"role": "Service"}},
                            "compute": {"count": 1, "select": {"role": "Compute", "arch": "X86"}}}
    assert out["network"] == {"vlan": 211}
    assert out["image"]["recipe"] == "/site/images/slurm-node.yml"
    assert [v["name"] for v in out["vservices"]] == ["slurm", "node_validator"]
    assert out["vservices"][1]["config"] == VALIDATOR
    assert source["name"] == "demo" and source["nodes"]["compute"]["count"] == 4  # the source is untouched


def test_counts_suffix_and_an_existing_validator():
    source = demo(vservices=[{"name": "slurm"}, {"name": "node_validator", "config": {"devices": ["/dev/fuse"]}}])
    out = vcluster_integration_copy(source, suffix="ci2", counts={"compute": 2}, vlan=3000)
    assert out["name"] == "demo_ci2" and out["nodes"]["compute"]["count"] == 2
    assert out["vservices"] == source["vservices"]


def test_never_more_than_the_manifest_and_zero_stays_zero():
    out = vcluster_integration_copy(demo(nodes={"gpu": {"count": 0, "select": {"role": "Compute"}},
                                                "compute": {"count": 1}}), vlan=3, validator_config={})
    assert out["nodes"]["gpu"]["count"] == 0 and out["nodes"]["compute"] == {"count": 1}


def test_pinned_nodes_need_a_select_and_are_never_copied():
    pinned = demo(nodes={"service": {"nodes": ["x3000c0s1b0n0"]}, "compute": {"count": 2}})
    assert "vcluster_integration_select.service" in errors_of(pinned, vlan=211, validator_config=VALIDATOR)
    out = vcluster_integration_copy(pinned, vlan=211, validator_config=VALIDATOR, select={"service": {"role": "Service"}})
    assert out["nodes"]["service"] == {"count": 1, "select": {"role": "Service"}}


def test_the_network_of_its_own():
    assert "give vcluster_integration_vlan" in errors_of(demo(), validator_config=VALIDATOR)
    assert "other than the vCluster's 210" in errors_of(demo(), vlan=210, validator_config=VALIDATOR)
    assert "vcluster_integration_vlan" in errors_of(demo(), vlan=5000, validator_config=VALIDATOR)
    ib = demo(network={"pkey": "0x0101", "membership": "full"})
    assert "give vcluster_integration_pkey" in errors_of(ib, validator_config=VALIDATOR)
    assert "other than" in errors_of(ib, pkey="0x101", validator_config=VALIDATOR)
    out = vcluster_integration_copy(ib, pkey="0x0202", validator_config=VALIDATOR)
    assert out["network"] == {"pkey": "0x0202", "membership": "full"}
    plain = demo()
    del plain["network"]
    assert "network" not in vcluster_integration_copy(plain, validator_config=VALIDATOR)


def test_every_problem_at_once():
    text = errors_of(demo(name="d" * 38), suffix="Bad-", counts={"compute": 0, "gpu": 1}, select={"x": {}})
    for expected in ("vcluster_integration_suffix", "vcluster_integration_counts.compute",
                     "vcluster_integration_counts.gpu", "vcluster_integration_select.x", "network.vlan",
                     "node_validator"):
        assert expected in text, (expected, text)


def test_a_long_name_and_a_validator_without_slurm():
    assert "at most 40" in errors_of(demo(name="d" * 38), vlan=211, validator_config=VALIDATOR)
    assert "runs under Slurm" in errors_of(demo(vservices=[]), vlan=211, validator_config=VALIDATOR)
    assert "a mapping" in errors_of(demo(), vlan=211, validator_config=["x"])
    assert "a mapping" in errors_of("not a manifest")


def test_secret_file_references_become_absolute():
    source = demo(vservices=[{"name": "slurm"}, {"name": "x", "config": {"key": {"secret": {"file": "keys/k"}},
                                                                         "abs": {"secret": {"file": "/k"}},
                                                                         "env": {"secret": {"env": "K"}}}}])
    out = vcluster_integration_copy(source, "/site/vc", vlan=211, validator_config=VALIDATOR)
    config = out["vservices"][1]["config"]
    assert config == {"key": {"secret": {"file": "/site/vc/keys/k"}}, "abs": {"secret": {"file": "/k"}},
                      "env": {"secret": {"env": "K"}}}


def test_junit():
    xml = vcluster_junit([{"name": "deploy", "classname": "demo_it", "time": 80.5, "result": "pass"},
                          {"name": "NodeHealth", "classname": "demo_it.nid000001", "result": "fail",
                           "message": "sanity: <device> & more", "output": "log"},
                          {"name": "odd", "result": "weird"}], "suite <1>")
    root = ET.fromstring(xml)
    assert root.get("tests") == "3" and root.get("failures") == "1" and root.get("name") == "suite <1>"
    cases = root.find("testsuite").findall("testcase")
    assert cases[0].get("time") == "80.500" and not list(cases[0])
    failure = cases[1].find("failure")
    assert failure.get("message") == "sanity: <device> & more" and failure.text == "log"
    assert cases[2].find("error") is not None
    with pytest.raises(AnsibleFilterError):
        vcluster_junit("nope")
