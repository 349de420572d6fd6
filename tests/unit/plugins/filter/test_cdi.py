"""hpc.vcluster.cdi_devices: a CDI device per device node, named after it, and one for all."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hpc.vcluster.plugins.filter.cdi import cdi_devices
from ansible_collections.hpc.vcluster.plugins.module_utils._cdi import build_spec


def test_one_per_node_then_all():
    devices = cdi_devices(["/dev/cxi1", "/dev/cxi0"], "DEVS", file_mode="0666")
    assert [d["name"] for d in devices] == ["cxi0", "cxi1", "all"]
    assert devices[0]["container_edits"] == {"env": ["DEVS=cxi0"], "device_nodes": [
        {"path": "/dev/cxi0", "permissions": "rw", "file_mode": "0666"}]}
    assert devices[2]["container_edits"]["env"] == ["DEVS=cxi0,cxi1"]
    assert [n["path"] for n in devices[2]["container_edits"]["device_nodes"]] == ["/dev/cxi0", "/dev/cxi1"]
    # what the module takes
    assert build_spec("hpe.com/cxi", devices)["devices"][1]["containerEdits"]["deviceNodes"][0]["fileMode"] == 0o666


def test_no_nodes_no_devices_and_no_all():
    assert cdi_devices([], "DEVS") == []
    assert [d["name"] for d in cdi_devices(["/dev/cxi0"], "DEVS", all_name="")] == ["cxi0"]


@pytest.mark.parametrize("paths, env, message", [
    ("/dev/cxi0", "DEVS", "expected a list of device node paths"),
    (["/dev/cxi0"], "1DEVS", "is not a variable name"),
    (["/dev/a/cxi0", "/dev/b/cxi0"], "DEVS", "two device nodes have the same name"),
])
def test_refusals(paths, env, message):
    with pytest.raises(AnsibleFilterError, match=message):
        cdi_devices(paths, env)
