"""How hosts reach Ansible's inventory: variables in one update, groups through Group.add_host, names checked first."""
import pytest
import responses
from ansible._internal._datatag._tags import TrustedAsTemplate
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData

from inventory_harness import OC_SMD, OC_URL, register_openchami

BASE = {"plugin": "hpc.vcluster.openchami", "api_url": OC_URL, "token": "oc-static-token-123"}


@responses.activate
def test_hosts_vars_and_groups_are_what_the_public_api_would_have_made(parse, tmp_path):
    register_openchami()
    inventory = InventoryData()
    source = tmp_path / "lab.openchami.yml"
    source.write_text("plugin: hpc.vcluster.openchami\n")
    inventory.current_source = str(source)                   # as the inventory manager sets it
    before = inventory.get_groups_dict()          # a cached group -> hosts map made before this source
    assert "blue" not in before
    run = parse(dict(BASE), inventory=inventory)
    groups = run.inventory.get_groups_dict()      # the plugin dropped the stale map
    assert groups["blue"] == run.members("blue") and sorted(groups["site_openchami"]) == sorted(run.hosts)
    host = run.inventory.hosts["nid000002"]
    assert sorted(g.name for g in host.get_groups()) == sorted(
        ["_3d", "blue", "vc_blue", "p1", "Compute", "Compute_Worker", "arch_X86", "site_openchami"])
    hostvars = run.hostvars("nid000002")
    assert (hostvars["inventory_file"], hostvars["inventory_dir"]) == (str(source), str(tmp_path))  # add_host's
    assert hostvars["smd_xname"] == "x1000c0s1b0n0" and hostvars["vcluster_labels"] == ["3d", "blue", "vc_blue"]
    # every host has its own lists
    assert run.hostvars("nid000001")["vcluster_labels"] is not hostvars["vcluster_labels"]


@pytest.mark.parametrize("prefix", ["smd-", "1x_", "smd "])
@responses.activate
def test_a_prefix_that_makes_invalid_variable_names_is_refused_before_any_request(parse, prefix):
    register_openchami()
    with pytest.raises(AnsibleParserError) as err:
        parse(dict(BASE, hostvars_prefix=prefix))
    assert "hostvars_prefix" in str(err.value) and "invalid variable names" in str(err.value)
    assert not responses.calls


@responses.activate
def test_only_text_that_cannot_hold_a_template_is_trusted(parse):
    """Plain SMD values print as plain strings in --list; anything with template syntax stays untrusted."""
    responses.get(OC_SMD + "/State/Components", json={"Components": [
        {"ID": "x1000c0s0b0n0", "Type": "Node", "NID": 1, "Role": "Compute", "Arch": "{{ 7 * 7 }}"}]})
    responses.get(OC_SMD + "/memberships", json=[{"id": "x1000c0s0b0n0", "partitionName": "p1",
                                                 "groupLabels": ["vc_blue", "{% if 1 %}x{% endif %}", "#jinja2:x"]}])
    responses.get(OC_SMD + "/Inventory/EthernetInterfaces", json=[
        {"ComponentID": "x1000c0s0b0n0", "MACAddress": "02:00:00:00:00:01", "Description": "nid000001",
         "IPAddresses": [{"IPAddress": "10.252.1.1", "Network": "NMN"}]}])
    run = parse(dict(BASE, compose={"arch_again": "smd_arch"}))
    hostvars = run.hostvars("nid000001")
    trusted = TrustedAsTemplate.is_tagged_on
    for name in ("smd_xname", "smd_role", "smd_mac", "smd_ip", "ansible_host", "smd_hostname", "vcluster_partition"):
        assert trusted(hostvars[name]), name
    labels = dict((str(label), trusted(label)) for label in hostvars["vcluster_labels"])
    assert labels == {"vc_blue": True, "{% if 1 %}x{% endif %}": False, "#jinja2:x": False}
    assert not trusted(hostvars["smd_arch"]) and hostvars["arch_again"] == "{{ 7 * 7 }}"   # never rendered
