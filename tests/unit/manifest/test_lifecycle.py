"""The lifecycle's pure logic: per-node changes, vService change classes, batches, the manifest a rollback applies."""
import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils._lifecycle import (
    failed_nodes,
    LifecycleError, batches, node_changes, release_manifest, vservice_changes)

N = ["x1000c0s%db0n0" % i for i in range(4)]
PLAN = {"add": [N[3]], "nodes": [{"xname": x, "node_group": "compute"} for x in N] +
        [{"xname": "x3000c0s0b0n0", "node_group": "service"}],
        "boot_groups": [{"node_group": "compute", "kernel_params": "iommu=pt"},
                        {"node_group": "service", "kernel_params": ""}]}


def test_node_changes_reboot_only_running_nodes_whose_boot_changes():
    images = {"compute": {"name": "img", "tag": "2"}, "service": {"name": "img", "tag": "1"}}
    boot = {"image": {N[0]: {"name": "img", "tag": "1"}, N[1]: {"name": "img", "tag": "2"},
                      N[2]: {"name": "img", "tag": "2"}, "x3000c0s0b0n0": {"name": "img", "tag": "1"}},
            "kernel_params": {N[0]: "iommu=pt", N[1]: "iommu=pt", N[2]: "", "x3000c0s0b0n0": "console=ttyS0"}}
    power = {"power_state": {N[0]: "on", N[1]: "on", N[2]: "off", "x3000c0s0b0n0": "on"}}
    out = node_changes(PLAN, images, boot, power)
    assert out[N[0]] == {"node_group": "compute", "changes": ["image"], "boot": True, "reboot": True}
    assert out[N[1]] == {"node_group": "compute", "changes": [], "boot": False, "reboot": False}
    assert out[N[2]]["changes"] == ["kernel_params", "power_on"] and not out[N[2]]["reboot"] and out[N[2]]["boot"]
    assert out[N[3]]["changes"] == ["join", "image", "kernel_params", "power_on"]
    assert out["x3000c0s0b0n0"]["changes"] == []  # no kernel parameters asked: the node keeps its own


def test_vservice_changes_are_classified():
    old = {"vservices": [{"name": "slurm", "version": "1.0", "config": {"partitions": [1], "config": {"A": 1}}},
                         {"name": "enroot", "config": {}}, {"name": "gone"}]}
    new = {"vservices": [{"name": "slurm", "version": "1.0", "config": {"partitions": [2], "config": {"A": 1}}},
                         {"name": "enroot", "version": "2.0", "config": {}}, {"name": "pyxis"}]}
    spec = [{"name": "slurm", "reconfigure": ["partitions"]}]
    assert vservice_changes(old, new, spec) == [
        {"name": "slurm", "change": "reconfigure", "detail": "config: partitions"},
        {"name": "enroot", "change": "restart", "detail": "changed: version"},
        {"name": "pyxis", "change": "added", "detail": "new vService"},
        {"name": "gone", "change": "removed", "detail": "no longer in the manifest (not stopped)"}]
    new["vservices"][0]["config"]["config"] = {"A": 2}
    assert vservice_changes(old, new, spec)[0]["change"] == "restart"
    masked = {"vservices": [{"name": "slurm", "config": {"munge_key_b64": "********"}}]}
    assert vservice_changes(masked, masked, spec, digest_changed=True)[0]["change"] == "restart"
    assert vservice_changes(masked, masked, spec, digest_changed=False) == []


def test_batches_respect_size_and_what_is_already_unavailable():
    assert batches(N, 2) == [N[:2], N[2:]]
    assert batches(N, 3, max_unavailable=3, unavailable=1) == [N[:2], N[2:]]
    assert batches(N, "50%", total=4) == [N[:2], N[2:]]
    assert batches(N, 4, max_unavailable="25%", total=4) == [[x] for x in N]
    with pytest.raises(LifecycleError) as err:
        batches(N, 1, max_unavailable=1, unavailable=1)
    assert "already unavailable" in str(err.value)
    with pytest.raises(LifecycleError):
        batches(N, 0)


def test_release_manifest_drops_recipes_keeps_ims_ids_and_fills_secrets():
    record = {"id": "demo-000001", "images": {"compute": {"name": "img", "tag": "1", "ref": {"id": "abc"}}},
              "manifest": {"name": "demo", "image": {"name": "img", "tag": "1", "recipe": "../r.yml"},
                           "nodes": {"compute": {"count": 1, "image": {"name": "arm", "tag": "1", "recipe": "a.yml"}}},
                           "vservices": [{"name": "slurm", "config": {"munge_key_b64": "********", "x": 1}}]}}
    with pytest.raises(LifecycleError) as err:
        release_manifest(record)
    assert "vservices[0].config.munge_key_b64" in str(err.value)
    out = release_manifest(record, {"vservices": [{"name": "slurm", "config": {"munge_key_b64": "s3cr3t"}}]})
    assert out["image"] == {"name": "img", "tag": "1", "ims_id": "abc"}
    assert out["nodes"]["compute"]["image"] == {"name": "arm", "tag": "1"}
    assert out["vservices"][0]["config"] == {"munge_key_b64": "s3cr3t", "x": 1}
    assert record["manifest"]["vservices"][0]["config"]["munge_key_b64"] == "********"


def test_failed_nodes_from_power_smd_and_slurm_leave_an_administrators_drain_alone():
    nodes = [{"xname": "x%d" % i, "host": "nid%d" % i, "slurm_name": "nid%d" % i, "node_group": "compute", "heal": True}
             for i in range(6)]
    nodes[5]["heal"] = False
    power = {"x0": "on", "x1": "off", "x2": "on", "x3": "on", "x4": "off", "x5": "on"}
    smd = {"x0": {"state": "Ready", "flag": "OK"}, "x1": {"state": "Standby", "flag": "Alert"},
           "x2": {"state": "Ready", "flag": "OK"}, "x3": {"state": "Ready", "flag": "OK"},
           "x4": {"state": "Off", "flag": "OK"}, "x5": {"state": "Ready", "flag": "OK"}}
    sinfo = ["nid0|idle|none", "nid1|down*|Not responding", "nid2|drained|NHC: check_ps_service: cron",
             "nid3|idle*|none", "nid4|drained|admin: disk swap", "nid5|mixed|none"]
    out = failed_nodes(nodes, power, smd, sinfo)
    assert sorted(out["failed"]) == ["x1", "x2", "x3"]
    assert out["failed"]["x1"]["what"] == [
        "power: off", "management plane: state Standby", "management plane: flag Alert", "slurm: down* (Not responding)"]
    assert out["failed"]["x2"]["what"] == ["slurm: drained (NHC: check_ps_service: cron)"]
    assert out["left"] == {"x4": "slurm: drained (admin: disk swap)"}
    # an update's drain is not heal's either; without Slurm, power and SMD still tell
    assert failed_nodes(nodes[:1], {"x0": "on"}, {}, ["nid0|drained|vcluster: update"])["left"]
    assert failed_nodes(nodes[1:2], {"x1": "off"}, None, None)["failed"]["x1"]["what"] == ["power: off"]
    assert failed_nodes(nodes, {x: "on" for x in power}, {}, ["nid%d|idle|none" % i for i in range(6)]) == \
        {"failed": {}, "left": {}}
