"""boot_params and power: PUT-only idempotent updates, image URLs, check mode, PCS waits and per-node results."""
import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils import _wait
from ansible_collections.hpc.vcluster.plugins.modules import boot_params, power

from vc_harness import URL, FakeBss, FakePcs, FakeSmd, Failed, run

N0, N1, N2, N3 = ("x1000c0s%db0n0" % i for i in range(4))


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(_wait.time, "sleep", lambda s: None)


@pytest.mark.parametrize("kind", ["openchami", "csm"])
@pytest.mark.parametrize("aggregate", [True, False])
def test_boot_params_image_by_name_for_a_label(rsps, kind, aggregate):
    smd = FakeSmd(rsps, kind)
    smd.add_group("vc_blue", [N0, N1])
    bss = FakeBss(rsps, kind, aggregate=aggregate)
    bss.hosts[N0] = {"kernel": "k0", "initrd": "i0", "params": "console=ttyS0  root=old quiet"}
    args = {"label": "vc_blue", "image": {"name": "compute", "tag": "v1", "url_base": "http://s3/boot-images"}}
    res = run(boot_params.main, args, kind=kind)
    base = "http://s3/boot-images/compute/v1"
    assert res["changed"] and res["changed_nodes"] == [N0, N1]
    assert bss.hosts[N0] == {"kernel": base + "/vmlinuz", "initrd": base + "/initramfs.img",
                             "params": "console=ttyS0 root=live:%s/rootfs.squashfs quiet" % base}
    assert bss.hosts[N1]["params"] == "root=live:%s/rootfs.squashfs" % base
    assert all(write[0] == "PUT" for write in bss.writes)
    assert res["diff"]["before"][N1] == {} and res["diff"]["after"][N1]["kernel"] == base + "/vmlinuz"
    writes = len(bss.writes)
    again = run(boot_params.main, args, kind=kind)
    assert again["changed"] is False and len(bss.writes) == writes


def test_boot_params_one_put_per_distinct_triple_and_default_url(rsps):
    FakeSmd(rsps)
    bss = FakeBss(rsps)
    res = run(boot_params.main, {"nodes": ["x1000c0s[0-3]b0n0"], "image": {"name": "compute"}, "params": "ip=dhcp"})
    assert res["changed_nodes"] == [N0, N1, N2, N3]
    assert len(bss.writes) == 1 and bss.writes[0][1]["hosts"] == [N0, N1, N2, N3]
    assert bss.hosts[N0]["kernel"] == URL + "/boot-images/compute/latest/vmlinuz"


def test_boot_params_ims_id_and_check_mode(rsps):
    FakeSmd(rsps, "csm")
    bss = FakeBss(rsps, "csm")
    image_id = "4bf91021-8d99-4adf-945f-46de2ff50a3d"
    res = run(boot_params.main, {"nodes": [N0], "image": {"id": image_id}}, kind="csm", check=True)
    assert res["changed"] and bss.writes == []
    assert res["boot_params"][N0]["kernel"] == "s3://boot-images/%s/kernel" % image_id
    assert "root=craycps-s3:s3://boot-images/%s/rootfs" % image_id in res["boot_params"][N0]["params"]


def test_boot_params_only_params_keeps_kernel(rsps):
    FakeSmd(rsps)
    bss = FakeBss(rsps)
    bss.hosts[N0] = {"kernel": "k", "initrd": "i", "params": "a=1"}
    run(boot_params.main, {"nodes": [N0], "params": "a=2"})
    assert bss.hosts[N0] == {"kernel": "k", "initrd": "i", "params": "a=2"}


def test_boot_params_absent_and_missing_label(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0, N1])
    bss = FakeBss(rsps)
    bss.hosts[N0] = {"kernel": "k", "initrd": "i", "params": ""}
    res = run(boot_params.main, {"label": "vc_blue", "state": "absent"})
    assert res["changed"] and res["changed_nodes"] == [N0] and bss.hosts == {}
    assert run(boot_params.main, {"label": "vc_blue", "state": "absent"})["changed"] is False
    assert run(boot_params.main, {"label": "vc_gone", "state": "absent"})["changed"] is False
    with pytest.raises(Failed) as err:
        run(boot_params.main, {"label": "vc_gone", "params": "x"})
    assert "does not exist" in err.value.result["msg"]


def test_boot_params_rbac_on_nodes_checks_memberships(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0])
    smd.add_group("vc_red", [N1])
    bss = FakeBss(rsps)
    with pytest.raises(Failed) as err:
        run(boot_params.main, {"nodes": [N0, N1], "params": "x", "allowed_labels": ["vc_blue"]})
    assert N1 in err.value.result["msg"] and "access denied" in err.value.result["msg"]
    assert bss.writes == []
    assert run(boot_params.main, {"nodes": [N0], "params": "x", "allowed_labels": ["vc_blue"]})["changed"]


# ------------------------------------------------------------------------------ power
def test_power_on_only_acts_on_nodes_that_are_off_and_is_idempotent(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0, N1])
    pcs = FakePcs(rsps, power={N0: "on", N1: "off"}, polls=3)
    res = run(power.main, {"label": "vc_blue", "state": "on", "poll_interval": 0.1})
    assert res["changed"] and res["changed_nodes"] == [N1]
    assert pcs.posted == [{"operation": "on", "location": [{"xname": N1}]}]
    assert res["node_results"][N1]["status"] == "succeeded"
    assert res["transitions"][0]["status"] == "completed" and res["transitions"][0]["task_counts"]["un-supported"] == 0
    assert res["power_state"] == {N0: "on", N1: "on"}
    assert res["diff"] == {"before": {N1: "off"}, "after": {N1: "on"}}
    again = run(power.main, {"label": "vc_blue", "state": "on"})
    assert again["changed"] is False and len(pcs.posted) == 1


def test_power_check_mode_from_power_status(rsps):
    FakeSmd(rsps)
    pcs = FakePcs(rsps, power={N0: "on", N1: "on"})
    res = run(power.main, {"nodes": [N0, N1], "state": "off"}, check=True)
    assert res["changed"] and res["changed_nodes"] == [N0, N1] and res["power_state"] == {N0: "off", N1: "off"}
    assert pcs.posted == []


def test_power_restart_restarts_on_nodes_and_powers_on_off_nodes(rsps):
    FakeSmd(rsps)
    pcs = FakePcs(rsps, power={N0: "on", N1: "off"})
    res = run(power.main, {"nodes": [N0, N1], "state": "soft-restart"})
    assert sorted((p["operation"], p["location"][0]["xname"]) for p in pcs.posted) == [("on", N1), ("soft-restart", N0)]
    assert res["node_results"][N0]["operation"] == "soft-restart" and res["node_results"][N1]["operation"] == "on"


def test_power_failure_names_the_node(rsps):
    FakeSmd(rsps)
    FakePcs(rsps, power={N0: "off", N1: "off"}, fail=[N1])
    with pytest.raises(Failed) as err:
        run(power.main, {"nodes": [N0, N1], "state": "on"})
    assert N1 in err.value.result["msg"] and "BMC unreachable" in err.value.result["msg"]
    assert err.value.result["node_results"][N0]["status"] == "succeeded"


def test_power_unknown_node_refused_before_any_transition(rsps):
    smd = FakeSmd(rsps)
    smd.components.append({"ID": "x1000c0s9b0n0", "Type": "Node", "State": "Ready", "NID": 10, "Role": "Compute",
                           "Arch": "X86"})
    pcs = FakePcs(rsps, power={N0: "off"})
    with pytest.raises(Failed) as err:
        run(power.main, {"nodes": [N0, "x1000c0s9b0n0"], "state": "on"})
    assert "Component not found" in err.value.result["msg"] and pcs.posted == []


def test_power_timeout_is_reported_with_transition(rsps, monkeypatch):
    clock = iter(range(0, 10000, 50))
    monkeypatch.setattr(_wait.time, "monotonic", lambda: next(clock))
    FakeSmd(rsps)
    FakePcs(rsps, power={N0: "off"}, polls=1000)
    with pytest.raises(Failed) as err:
        run(power.main, {"nodes": [N0], "state": "on", "wait_timeout": 120})
    assert "did not complete within 120s" in err.value.result["msg"]
    assert err.value.result["transitions"][0]["status"] == "in-progress"


def test_power_no_wait_returns_transition_ids(rsps):
    FakeSmd(rsps)
    pcs = FakePcs(rsps, power={N0: "off"})
    res = run(power.main, {"nodes": [N0], "state": "on", "wait": False})
    assert res["changed"] and res["transitions"][0]["id"] in pcs.transitions and res["node_results"] == {}
