"""power_info and boot_params_info: bulk reads, nothing written, the image named per node, missing labels."""
import pytest

from ansible_collections.hpc.vcluster.plugins.modules import boot_params_info, power_info

from vc_harness import FakeBss, FakePcs, FakeSmd, Failed, run

N0, N1, N2, N3 = ("x1000c0s%db0n0" % i for i in range(4))
IMS = "4bf91021-8d99-4adf-945f-46de2ff50a3d"


@pytest.mark.parametrize("kind", ["openchami", "csm"])
def test_power_info_reads_a_label_without_transitions(rsps, kind):
    smd = FakeSmd(rsps, kind)
    smd.add_group("vc_blue", [N0, N1, N2])
    pcs = FakePcs(rsps, kind, power={N0: "on", N1: "off"})
    res = run(power_info.main, {"label": "vc_blue"}, kind=kind)
    assert res["changed"] is False and pcs.posted == []
    assert res["power_state"] == {N0: "on", N1: "off", N2: "undefined"}
    assert res["on"] == [N0] and res["off"] == [N1]
    assert set(res["errors"]) == {N2} and res["management_state"][N0] == "available"


def test_power_info_reads_smd_state_in_one_call(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0, N1])
    smd.components[1].update(State="Standby", Flag="Alert")
    FakePcs(rsps, power={N0: "on", N1: "off"})
    res = run(power_info.main, {"label": "vc_blue", "smd_state": True})
    assert res["components"] == {N0: {"state": "Ready", "flag": "OK"}, N1: {"state": "Standby", "flag": "Alert"}}
    assert "components" not in run(power_info.main, {"label": "vc_blue"})


def test_power_info_missing_label(rsps):
    FakeSmd(rsps)
    FakePcs(rsps)
    assert run(power_info.main, {"label": "vc_gone", "missing_ok": True})["nodes"] == []
    with pytest.raises(Failed) as err:
        run(power_info.main, {"label": "vc_gone"})
    assert "does not exist" in err.value.result["msg"]


@pytest.mark.parametrize("kind", ["openchami", "csm"])
@pytest.mark.parametrize("aggregate", [True, False])
def test_boot_params_info_names_images_and_missing_nodes(rsps, kind, aggregate):
    FakeSmd(rsps, kind)
    bss = FakeBss(rsps, kind, aggregate=aggregate)
    base = "https://s3/boot-images/compute/v1"
    bss.hosts[N0] = {"kernel": base + "/vmlinuz", "initrd": base + "/initramfs.img",
                     "params": "console=ttyS0  root=live:%s/rootfs.squashfs quiet" % base}
    bss.hosts[N1] = {"kernel": "s3://boot-images/%s/kernel" % IMS, "initrd": "s3://boot-images/%s/initrd" % IMS,
                     "params": "root=craycps-s3:s3://boot-images/%s/rootfs" % IMS}
    bss.hosts[N2] = {"kernel": "http://elsewhere/vmlinuz", "initrd": "", "params": ""}
    res = run(boot_params_info.main, {"nodes": ["x1000c0s[0-3]b0n0"]}, kind=kind)
    assert res["changed"] is False and bss.writes == []
    assert res["image"] == {N0: {"name": "compute", "tag": "v1"}, N1: {"id": IMS}, N2: None, N3: None}
    assert res["kernel_params"][N0] == "console=ttyS0 quiet" and res["kernel_params"][N1] == ""
    assert res["boot_params"][N0]["params"].startswith("console=ttyS0 root=live:")
    assert res["missing"] == [N3]
