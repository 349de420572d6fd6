"""hpc.vcluster.cdi_spec: a spec is checked before it is written, written only when it changes.

Runs the module in-process on a temporary directory: the first run writes the file (diff
shows it), a second changes nothing, check mode writes nothing, every rule of the
specification that is broken is named by its option, and absent removes the file.
"""
import json
import os
import stat

import pytest
from vc_harness import Failed, run

from ansible_collections.hpc.vcluster.plugins.module_utils._cdi import SpecError, build_spec
from ansible_collections.hpc.vcluster.plugins.modules import cdi_spec

CXI = {
    "kind": "hpe.com/cxi",
    "container_edits": {"env": ["FI_PROVIDER=cxi"]},
    "devices": [{"name": "cxi0", "container_edits": {
        "env": ["HPC_VCLUSTER_CDI_DEVICES=cxi0"],
        "device_nodes": [{"path": "/dev/cxi0", "permissions": "rw", "file_mode": "0666", "type": "c"}]}}],
}


def args(path, **more):
    return dict(CXI, path=str(path), **more)


def test_write_then_nothing_to_do(tmp_path):
    path = tmp_path / "cdi" / "hpe.com-cxi.json"
    first = run(cdi_spec.main, args(path), site=False)
    assert first["changed"] and first["devices"] == ["hpe.com/cxi=cxi0"]
    assert first["diff"]["before"] == "" and '"kind": "hpe.com/cxi"' in first["diff"]["after"]
    written = json.loads(path.read_text())
    assert written == {
        "cdiVersion": "0.5.0", "kind": "hpe.com/cxi", "containerEdits": {"env": ["FI_PROVIDER=cxi"]},
        "devices": [{"name": "cxi0", "containerEdits": {
            "env": ["HPC_VCLUSTER_CDI_DEVICES=cxi0"],
            "deviceNodes": [{"path": "/dev/cxi0", "permissions": "rw", "fileMode": 0o666, "type": "c"}]}}]}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    again = run(cdi_spec.main, args(path), site=False)
    assert not again["changed"]


def test_check_mode_writes_nothing_and_mode_is_kept(tmp_path):
    path = tmp_path / "hpe.com-cxi.json"
    assert run(cdi_spec.main, args(path), check=True, site=False)["changed"]
    assert not path.exists()
    run(cdi_spec.main, args(path, mode="0600"), site=False)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert run(cdi_spec.main, args(path, mode="0644"), site=False)["changed"]


def test_a_changed_device_is_a_changed_file(tmp_path):
    path = tmp_path / "hpe.com-cxi.json"
    run(cdi_spec.main, args(path), site=False)
    more = dict(CXI, devices=CXI["devices"] + [{"name": "cxi1", "container_edits": {
        "device_nodes": [{"path": "/dev/cxi1"}]}}])
    result = run(cdi_spec.main, dict(more, path=str(path)), site=False)
    assert result["changed"] and result["devices"] == ["hpe.com/cxi=cxi0", "hpe.com/cxi=cxi1"]
    assert '"name": "cxi1"' in result["diff"]["after"] and '"name": "cxi1"' not in result["diff"]["before"]


def test_absent_removes_it(tmp_path):
    path = tmp_path / "hpe.com-cxi.json"
    run(cdi_spec.main, args(path), site=False)
    assert run(cdi_spec.main, {"path": str(path), "state": "absent"}, site=False)["changed"]
    assert not path.exists()
    assert not run(cdi_spec.main, {"path": str(path), "state": "absent"}, site=False)["changed"]


@pytest.mark.parametrize("spoil, message", [
    (lambda a: a.update(kind="cxi"), "kind: 'cxi' must be vendor/class"),
    (lambda a: a.update(kind="hpe/cxi"), "the vendor a DNS name"),
    (lambda a: a.update(cdi_version="0.9.9"), "cdi_version: '0.9.9' is not a CDI version"),
    (lambda a: a["devices"][0].update(name="-cxi0"), "devices[0].name: '-cxi0' must be letters"),
    (lambda a: a.update(cdi_version="0.4.0", devices=[{"name": "0", "container_edits": {"env": ["A=1"]}}]),
     "devices[0].name: '0' starts with a digit, which needs cdi_version 0.5.0"),
    (lambda a: a["devices"].append(dict(a["devices"][0])), "devices[1].name: 'cxi0' is given twice"),
    (lambda a: a["devices"][0]["container_edits"]["env"].append("1BAD=x"),
     "devices[0].container_edits.env[1]: '1BAD=x' must be NAME=value"),
    (lambda a: a["devices"][0]["container_edits"]["device_nodes"][0].update(path="dev/cxi0"),
     "devices[0].container_edits.device_nodes[0].path: 'dev/cxi0' must be an absolute path"),
    (lambda a: a["devices"][0]["container_edits"]["device_nodes"][0].update(file_mode="rw-rw-rw-"),
     "file_mode: 'rw-rw-rw-' is not an octal mode"),
    (lambda a: a["devices"][0]["container_edits"]["device_nodes"][0].update(permissions="rx"),
     "permissions: 'rx' is not a combination of r, w and m"),
    (lambda a: a["devices"][0]["container_edits"]["device_nodes"][0].update(type="x"), "type: 'x' is not one of"),
    (lambda a: a["devices"][0].update(container_edits={}), "devices[0].container_edits: a device must change something"),
    (lambda a: a["container_edits"].update(additional_gids=[44]), "container_edits.additional_gids: needs cdi_version 0.7.0"),
    (lambda a: a["container_edits"].update(hooks=[{"hook_name": "onStart", "path": "/bin/true"}]),
     "container_edits.hooks[0].hook_name: 'onStart' is not one of"),
    (lambda a: a["container_edits"].update(netdevs=[]), "container_edits.netdevs: unknown"),
])
def test_each_broken_rule_is_named_and_nothing_is_written(tmp_path, spoil, message):
    path = tmp_path / "hpe.com-cxi.json"
    bad = json.loads(json.dumps(args(path)))
    spoil(bad)
    with pytest.raises(Failed) as err:
        run(cdi_spec.main, bad, site=False)
    assert message in err.value.result["msg"]
    assert err.value.result["msg"].startswith(f"CDI spec {path}: ")
    assert not path.exists()


def test_every_problem_at_once():
    with pytest.raises(SpecError) as err:
        build_spec("nokind", [{"name": "a b", "container_edits": {"env": ["x"]}}])
    assert len(err.value.problems) == 3


def test_path_must_be_json(tmp_path):
    with pytest.raises(Failed, match="must end in .json"):
        run(cdi_spec.main, args(tmp_path / "spec.yaml"), site=False)
