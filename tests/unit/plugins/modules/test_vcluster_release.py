"""vcluster_release and vcluster_info: records in the site's S3 store, numbered, unchanged re-runs write nothing,
a failed update says which nodes are behind, rollback targets, masking and digests of the manifest."""
import pytest

from ansible_collections.hpc.vcluster.plugins.action.vcluster_manifest import digest, mask
from ansible_collections.hpc.vcluster.plugins.module_utils._releases import previous, select
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError
from ansible_collections.hpc.vcluster.plugins.modules import vcluster_info, vcluster_plan, vcluster_release

from test_network_segment import FakeFabric
from vc_harness import FakeBss, FakePcs, FakeS3, FakeSmd, Failed, run

STORE = {"s3_url": "http://s3.test/store", "s3_access_key": "ak", "s3_secret_key": "sk"}
N0, N1 = "x1000c0s0b0n0", "x1000c0s1b0n0"


def release(**kw):
    args = dict(STORE, name="demo", operation="deploy", manifest={"name": "demo"}, manifest_digest="sha256:a",
                images={"compute": {"name": "img", "tag": "1", "digest": "sha256:i1"}},
                vservices=[{"name": "slurm", "version": "1.0"}], nodes={N0: "compute", N1: "compute"},
                fingerprints={"nid000001": "f1", "nid000002": "f2"}, who={"user": "tester"})
    args.update(kw)
    return args


def test_records_are_numbered_and_an_unchanged_rerun_writes_nothing(rsps):
    s3 = FakeS3(rsps)
    first = run(vcluster_release.main, release())
    assert first["changed"] and first["release"]["id"] == "demo-000001" and first["history_length"] == 1
    assert first["release"]["nodes"] == {N0: {"node_group": "compute", "release": 1},
                                         N1: {"node_group": "compute", "release": 1}}
    assert first["release"]["who"]["user"] == "tester" and first["release"]["who"]["host"]
    again = run(vcluster_release.main, release(operation="rollback"))
    assert again["changed"] is False and again["release"]["seq"] == 1
    assert list(s3.buckets["vcluster-releases"]) == ["demo/000001.json"]
    check = run(vcluster_release.main, release(manifest_digest="sha256:b"), check=True)
    assert check["changed"] and check["release"]["seq"] == 2 and len(s3.buckets["vcluster-releases"]) == 1
    assert check["diff"]["before"]["id"] == "demo-000001" and "manifest" not in check["diff"]["after"]


def test_failed_update_keeps_the_nodes_behind_on_their_release_and_rollback_targets(rsps):
    FakeS3(rsps)
    run(vcluster_release.main, release())
    run(vcluster_release.main, release(operation="update", result="failed", manifest_digest="sha256:b",
                                       nodes_behind=[N1], note="batch 1 failed"))
    info = run(vcluster_info.main, dict(STORE, name="demo"))
    assert [h["id"] for h in info["history"]] == ["demo-000001", "demo-000002"]
    assert info["latest"]["nodes"] == {N0: {"node_group": "compute", "release": 2},
                                       N1: {"node_group": "compute", "release": 1}}
    assert info["current"]["seq"] == 1 and info["previous"]["seq"] == 1
    assert "manifest" not in info["history"][0] and "fingerprints" not in info["history"][0]
    run(vcluster_release.main, release(operation="rollback"))
    info = run(vcluster_info.main, dict(STORE, name="demo", release="demo-000002", full=True))
    assert [h["operation"] for h in info["history"]] == ["deploy", "update", "rollback"]
    assert info["current"]["seq"] == 3 and info["selected"]["result"] == "failed" and "manifest" in info["history"][0]
    with pytest.raises(Failed) as err:
        run(vcluster_info.main, dict(STORE, name="demo", release="7"))
    assert "has no release 7" in err.value.result["msg"] and "demo-000003 (rollback success)" in err.value.result["msg"]


def test_empty_history_and_other_vclusters(rsps):
    FakeS3(rsps)
    run(vcluster_release.main, release(name="other"))
    info = run(vcluster_info.main, dict(STORE, name="demo"))
    assert info["history"] == [] and info["current"] is None and info["latest"] is None


def test_previous_is_the_last_success_with_other_content():
    h = [{"seq": 1, "result": "success", "manifest_digest": "a"}, {"seq": 2, "result": "success", "manifest_digest": "b"},
         {"seq": 3, "result": "success", "manifest_digest": "a"}]
    assert previous(h)["seq"] == 2 and previous(h[:2])["seq"] == 1 and previous(h[:1]) is None
    assert select(h, "previous", "demo")["seq"] == 2 and select(h, "3", "demo")["seq"] == 3
    with pytest.raises(SiteError):
        select(h, "other-000001", "demo")


def test_masking_and_digest():
    catalog = {"slurm": {"argument_spec": {"slurm_munge_key_b64": {"type": "str", "no_log": True},
                                           "slurm_dbd_config": {"type": "dict"}}}}
    manifest = {"name": "demo", "vservices": [
        {"name": "slurm", "config": {"munge_key_b64": "c2VjcmV0", "dbd_config": {"StoragePass": "pw", "DbdPort": 1},
                                     "partitions": [{"name": "debug"}]}},
        {"name": "site_tuning", "source": {"git": "g", "version": "1"}, "config": {"api_token": "t", "level": 2}}]}
    masked = mask(manifest, catalog)
    assert masked["vservices"][0]["config"] == {"munge_key_b64": "********",
                                                "dbd_config": {"StoragePass": "********", "DbdPort": 1},
                                                "partitions": [{"name": "debug"}]}
    assert masked["vservices"][1]["config"] == {"api_token": "********", "level": 2}
    assert manifest["vservices"][0]["config"]["munge_key_b64"] == "c2VjcmV0"  # the original is untouched
    reordered = {"vservices": manifest["vservices"], "name": "demo"}
    assert digest(manifest) == digest(reordered) and digest(manifest).startswith("sha256:")
    # a secret changed where it is kept changes the digest (the manifest holds only its reference)
    secret = [("vservices[0].config.munge_key_b64", "a" * 44)]
    assert digest(manifest, secret) == digest(reordered, list(secret)) != digest(manifest)
    assert digest(manifest, [("vservices[0].config.munge_key_b64", "b" * 44)]) != digest(manifest, secret)
    assert "a" * 44 not in digest(manifest, secret)
    assert digest(manifest) != digest(dict(manifest, name="other"))


def test_site_state_is_recorded_and_a_change_on_the_site_makes_a_new_record(rsps):
    FakeS3(rsps)
    smd = FakeSmd(rsps)
    smd.add_group("demo", [N0, N1], exclusive="vcluster")
    bss = FakeBss(rsps)
    bss.hosts = dict((x, {"kernel": "k", "initrd": "i", "params": "p"}) for x in (N0, N1))
    pcs = FakePcs(rsps, power={N0: "on", N1: "on"})
    fabric = FakeFabric(rsps)
    fabric.vlans["240"] = {"id": 240, "name": "demo"}
    fabric.policies["demo"] = {"allowedVlans": ["/fabric/vlans/240"], "nativeVlanId": "/fabric/vlans/240"}
    for port in fabric.ports.values():
        if port["dst_port"][:-2] in (N0, N1):
            port["portPolicyLinks"] = ["/fabric/port-policies/demo"]
    manifest = {"name": "demo", "nodes": {"compute": {"count": 2, "select": {"role": "Compute"}}},
                "image": {"name": "img", "tag": "1"}, "network": {"vlan": 240}}
    args = release(manifest=manifest, site_state=True)
    first = run(vcluster_release.main, args)
    assert first["written"] and first["release"]["site_fingerprint"].startswith("sha256:")
    # the plan reads the same site and finds the same hash
    planned = run(vcluster_plan.main, {"manifest": manifest, "site_state": True})
    assert planned["plan"]["members"] == [N0, N1]
    assert planned["site_fingerprint"] == first["release"]["site_fingerprint"]
    assert run(vcluster_plan.main, {"manifest": manifest})["site_fingerprint"] == ""
    # unchanged: nothing written; a node powered off by hand: another hash, a new record
    assert run(vcluster_release.main, args)["written"] is False
    pcs.power[N1] = "off"
    assert run(vcluster_plan.main, {"manifest": manifest, "site_state": True})["site_fingerprint"] != planned["site_fingerprint"]
    second = run(vcluster_release.main, args)
    assert second["written"] and second["release"]["site_fingerprint"] != first["release"]["site_fingerprint"]
