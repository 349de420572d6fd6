"""A manifest that names its site is refused by a play on another site, before any call."""
import pytest

from ansible_collections.hpc.vcluster.plugins.modules import vcluster_plan

from vc_harness import Failed, run

MANIFEST = {"name": "tiny", "site": "site-a", "nodes": {"compute": {"count": 1, "select": {"role": "Compute"}}},
            "image": {"name": "base", "tag": "1"}}


def test_manifest_for_another_site_is_refused_before_any_call(rsps):
    with pytest.raises(Failed) as failed:
        run(vcluster_plan.main, {"manifest": MANIFEST, "site_name": "site-b"})
    assert failed.value.result["msg"].startswith(
        "manifest.site: vCluster tiny is for site site-a, and this play's site is site-b")
    assert len(rsps.calls) == 0
