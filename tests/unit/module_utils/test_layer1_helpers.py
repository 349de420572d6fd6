"""Shared module logic: node names and ranges, access policy from token roles, image URLs, polling."""
import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils._access import AccessDenied, AccessPolicy, token_roles
from ansible_collections.hpc.vcluster.plugins.module_utils._images import (image_boot_artifacts, image_of, set_param)
from ansible_collections.hpc.vcluster.plugins.module_utils._site import Site, SiteError
from ansible_collections.hpc.vcluster.plugins.module_utils._targets import expand_ranges, split_node_names
from ansible_collections.hpc.vcluster.plugins.module_utils._wait import WaitTimeout, wait_for


def test_ranges_and_node_names():
    assert expand_ranges("x1000c0s[0-2,5]b0n[0-1]") == [
        "x1000c0s%db0n%d" % (s, n) for s in (0, 1, 2, 5) for n in (0, 1)]
    assert expand_ranges("nid[0008-0010]") == ["nid0008", "nid0009", "nid0010"]
    xnames, nids = split_node_names(["X1000C0S0B0N0", "nid000012", "7", "x1000c0s[1-2]b0n0"])
    assert xnames == {"x1000c0s0b0n0", "x1000c0s1b0n0", "x1000c0s2b0n0"} and nids == {12, 7}
    with pytest.raises(SiteError):
        split_node_names(["login01"])
    with pytest.raises(SiteError):
        expand_ranges("x[5-1]")


def test_token_roles_and_policy():
    labels, admin = token_roles({"realm_access": {"roles": ["vc_blue", "offline_access", "default-roles-shasta",
                                                            "uma_authorization"]}})
    assert labels == {"vc_blue"} and not admin
    assert token_roles({"roles": ["admin"]}) == (set(), True)
    policy = AccessPolicy(["vc_blue", "vc_red"], token_labels={"vc_blue"})
    assert policy.allowed() == {"vc_blue"} and policy.allows("VC_BLUE") and not policy.allows("vc_red")
    with pytest.raises(AccessDenied) as err:
        policy.check_labels(["vc_red"])
    assert "vc_red" in str(err.value) and "allowed_labels" in str(err.value)
    assert AccessPolicy().allowed() is None and not AccessPolicy([]).restricted


def test_image_urls_follow_site_conventions():
    oc, csm = Site("openchami", "https://api.example"), Site("csm", "https://api.example")
    art = image_boot_artifacts({"name": "compute", "tag": "v1"}, oc)
    assert art["kernel"] == "https://api.example/boot-images/compute/v1/vmlinuz"
    assert art["root"] == "live:https://api.example/boot-images/compute/v1/rootfs.squashfs"
    assert image_boot_artifacts({"name": "c"}, csm)["initrd"] == "s3://boot-images/c/latest/initramfs.img"
    uid = "4bf91021-8d99-4adf-945f-46de2ff50a3d"
    assert image_boot_artifacts({"id": uid}, csm)["kernel"] == "s3://boot-images/%s/kernel" % uid
    assert image_of({"kernel": "s3://boot-images/%s/kernel" % uid}) == {"id": uid}
    assert image_of({"kernel": "http://s3/boot-images/efi-images/compute/v1/vmlinuz"}) == {"name": "compute", "tag": "v1"}
    assert image_of({"params": "root=live:http://s3/boot-images/c/2/rootfs ip=dhcp"}) == {"name": "c", "tag": "2"}
    assert image_of({"kernel": "http://elsewhere/vmlinuz"}) is None
    assert set_param("a=1 root=x  b", "root", "y") == "a=1 root=y b"
    assert set_param("", "root", "y") == "root=y"
    with pytest.raises(SiteError):
        image_boot_artifacts({"id": "not-a-uuid"}, csm)


def test_wait_for_grows_the_interval_and_reports_the_last_value():
    values = iter([1, 2, 3, 4])
    sleeps = []
    assert wait_for(lambda: next(values), lambda v: v == 4, timeout=100, interval=2, sleep=sleeps.append,
                    clock=lambda: 0) == 4
    assert sleeps == [2, 3.0, 4.5]
    clock = iter([0, 5, 11])
    with pytest.raises(WaitTimeout) as err:
        wait_for(lambda: "running", lambda v: False, timeout=10, sleep=lambda s: None, clock=lambda: next(clock))
    assert err.value.last == "running"
