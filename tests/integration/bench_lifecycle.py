"""make bench-lifecycle: what a vCluster's life costs on the lab, measured in one run (not a test: it prints).

On a lab of 1 service + 4 compute nodes (the `lab` fixture; VCLUSTER_TEST_LAB_HOME reuses one), with the
node images built beforehand (not timed):

* deploy of the vCluster (1 + 4 nodes, Slurm) from cached images;
* the unchanged re-run: its time as a ratio of the deploy, and changed=0 on every host;
* the same re-run with the label, boot, network and power steps run anyway (vcluster_site_skip_unchanged
  off), what the re-run cost before the site's hash let the deploy skip them;
* the same re-run with the vServices applied anyway (vcluster_vservices_force), the baseline of what the
  re-run cost before releases told the lifecycle what each node runs;
* an image update of the 4 compute nodes (batches of 2), total and per node.

The figures go to stdout and to .bench/lifecycle.json; docs/lifecycle.md has the last ones.
"""
from __future__ import annotations

import json
import time

from test_lifecycle import build_images, manifest
from vc_lab import ROOT, failed_messages, run_site_playbook


def timed(lab, tmp, name, **kw):
    result = run_site_playbook(lab, "openchami", name, tmp, **kw)
    assert result["rc"] == 0, failed_messages(result)
    changed = sum(s.get("changed", 0) for s in result["stats"].values())
    return result["seconds"], changed


def test_bench_lifecycle(lab, tmp_path):
    v1, v2 = manifest(tmp_path), manifest(tmp_path, "2")
    # the images, built once and cached (a deploy then boots them, as from a site's image store)
    build_images(lab, str(tmp_path / "life-1.yml"), str(tmp_path / "life-2.yml"))
    figures = {}
    try:
        figures["deploy"] = timed(lab, tmp_path, "deploy", extra_vars={"vcluster_manifest": v1})[0]
        figures["rerun"], figures["rerun_changed"] = timed(lab, tmp_path, "deploy", extra_vars={"vcluster_manifest": v1})
        steps = {"vcluster_manifest": v1, "vcluster_site_skip_unchanged": False}
        figures["rerun_site_steps"], figures["rerun_site_steps_changed"] = timed(lab, tmp_path, "deploy", extra_vars=steps)
        # the unchanged re-run once more, after the baseline (the machine's noise on both sides of it)
        figures["rerun_again"] = timed(lab, tmp_path, "deploy", extra_vars={"vcluster_manifest": v1})[0]
        forced = {"vcluster_manifest": v1, "vcluster_vservices_force": True}
        figures["rerun_forced"] = timed(lab, tmp_path, "deploy", extra_vars=forced)[0]
        update = {"vcluster_manifest": v2, "vcluster_batch_size": 2}
        figures["update"] = timed(lab, tmp_path, "update", extra_vars=update)[0]
    finally:
        run_site_playbook(lab, "openchami", "destroy", tmp_path, extra_vars={"vcluster_manifest": v1})
        from test_deploy import restore_nodes
        restore_nodes(lab)
    figures["rerun_ratio"] = figures["rerun"] / figures["deploy"]
    figures["rerun_again_ratio"] = figures["rerun_again"] / figures["deploy"]
    figures["rerun_site_steps_ratio"] = figures["rerun_site_steps"] / figures["deploy"]
    figures["rerun_forced_ratio"] = figures["rerun_forced"] / figures["deploy"]
    figures["update_per_node"] = figures["update"] / 4
    figures["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = ROOT / ".bench"
    out.mkdir(exist_ok=True)
    (out / "lifecycle.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("\nbench-lifecycle (lab, 1 service + 4 compute nodes, 2 cores)")
    print("| what | seconds | ratio to deploy |")
    print("|---|---|---|")
    rows = [("deploy from cached images", figures["deploy"]),
            ("unchanged re-run (changed=%d)" % figures["rerun_changed"], figures["rerun"]),
            ("unchanged re-run, the site's steps run anyway (changed=%d; before the site hash)"
             % figures["rerun_site_steps_changed"], figures["rerun_site_steps"]),
            ("unchanged re-run again", figures["rerun_again"]),
            ("re-run applying the vServices anyway (baseline)", figures["rerun_forced"]),
            ("image update of 4 compute nodes (batches of 2)", figures["update"])]
    for what, seconds in rows:
        print("| %s | %.1f | %.2f |" % (what, seconds, seconds / figures["deploy"]))
    print("| ... per compute node | %.1f | |" % figures["update_per_node"])
    print("unchanged re-run / the same with the site's steps: %.2f" % (figures["rerun"] / figures["rerun_site_steps"]))
    assert figures["rerun_changed"] == 0 and figures["rerun_site_steps_changed"] == 0
