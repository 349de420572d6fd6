"""repair_request: a request per node in the release bucket, beside (not among) the release records; check mode writes nothing."""
import json

from ansible_collections.hpc.vcluster.plugins.modules import repair_request, vcluster_info

from vc_harness import FakeS3, run

STORE = {"s3_url": "http://s3.test/store", "s3_access_key": "ak", "s3_secret_key": "sk"}
N1 = "x1000c0s1b0n0"


def test_a_request_is_written_beside_the_releases_and_check_mode_writes_nothing(rsps):
    s3 = FakeS3(rsps)
    args = dict(STORE, name="demo", node=N1, host="nid000002", found=["power: off"],
                errors=["attempt 1: Power on the others: failed"], logs=["kernel: oops"], who={"user": "heal"})
    checked = run(repair_request.main, args, check=True)
    assert checked["changed"] and not checked["written"] and not s3.buckets.get("vcluster-releases")
    done = run(repair_request.main, args)
    assert done["written"] and done["key"].startswith("vcluster-releases/demo/repairs/%s-" % N1)
    key = done["key"].split("/", 1)[1]
    stored = json.loads(s3.buckets["vcluster-releases"][key])
    assert stored["apiVersion"] == "hpc.vcluster/repair/v1" and stored["node"] == N1 and stored["removed"] is True
    assert stored["found"] == ["power: off"] and stored["logs"] == ["kernel: oops"] and stored["who"]["user"] == "heal"
    assert stored["time"].endswith("Z")
    # the release history does not count it
    assert run(vcluster_info.main, dict(STORE, name="demo"))["history"] == []
