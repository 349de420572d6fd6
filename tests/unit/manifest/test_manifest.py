"""Manifest validation: every error names its field; a valid manifest is normalized and ordered."""
import json
import pathlib

import pytest

from ansible_collections.hpc.vcluster.plugins.module_utils._manifest import (
    SCHEMA, ManifestError, apply_order, validate, version_compatible)

ROOT = pathlib.Path(__file__).resolve().parents[3]
CATALOG = {
    "slurm": {"version": "1.0", "after": [], "argument_spec": {}},
    "podman": {"version": "1.2", "after": [], "argument_spec": {}},
    "pyxis": {"version": "1.0", "after": ["slurm"], "argument_spec": {}},
}


def good():
    return {
        "name": "eiger",
        "nodes": {"service": {"count": 1, "select": {"role": "Service"}},
                  "compute": {"count": 4, "select": {"role": "Compute", "arch": "X86"}}},
        "image": {"name": "compute-base", "tag": "2026.11"},
        "network": {"vlan": 210},
        "storage": [{"name": "scratch", "type": "nfs", "source": "fs1:/scratch/eiger", "path": "/scratch"}],
        "vservices": [{"name": "pyxis"}, {"name": "slurm", "version": "1.0", "config": {"partitions": [{"name": "normal"}]}},
                      {"name": "podman", "nodes": ["compute"]}],
    }


def errors_of(manifest, catalog=None, **kw):
    with pytest.raises(ManifestError) as err:
        validate(manifest, catalog or CATALOG, **kw)
    return err.value.errors


def test_valid_manifest_is_normalized_and_ordered():
    out = validate(good(), CATALOG)
    assert [v["name"] for v in out["vservices"]] == ["slurm", "pyxis", "podman"]
    assert out["apiVersion"] == "hpc.vcluster/v1"
    assert out["boot"] == {"method": "bss", "timeout": 600}
    assert out["vservices"][0]["version"] == "1.0" and out["vservices"][1]["nodes"] == ["compute", "service"]


def test_wrong_type_names_the_path():
    m = good()
    m["nodes"]["compute"]["count"] = "four"
    assert errors_of(m) == ["nodes.compute.count: expected an integer, got a string 'four'"]


def test_capital_label_is_refused():
    m = good()
    m["name"] = "Eiger"
    (err,) = errors_of(m)
    assert err.startswith("name: 'Eiger' does not match ^[a-z][a-z0-9_]*$")


def test_missing_field_is_named():
    m = good()
    del m["image"]
    assert errors_of(m) == ["(top level): missing required field image"]
    m = good()
    del m["image"]["tag"]
    assert errors_of(m) == ["image: missing required field tag"]


def test_unknown_vservice_and_bad_version():
    m = good()
    m["vservices"].append({"name": "warewulf"})
    m["vservices"][1]["version"] = "2.0"
    errs = errors_of(m)
    assert "vservices[1].version: slurm 2.0 is asked, this collection provides 1.0" in errs
    assert any(e.startswith("vservices[3].name: unknown vService 'warewulf'; this collection provides podman, pyxis, slurm") for e in errs)


def test_unknown_field_and_all_errors_at_once():
    m = good()
    m["vservices"][1]["confg"] = {}
    m["network"] = {"vlan": 5000}
    errs = errors_of(m)
    assert "vservices[1]: unknown field confg; allowed: after, config, name, nodes, source, version" in errs
    assert "network.vlan: 5000 violates maximum 4094" in errs


def test_node_group_shape_and_references():
    m = good()
    m["nodes"]["compute"]["nodes"] = ["x1000c0s0b0n0"]
    assert errors_of(m) == ["nodes.compute: must be exactly one of the allowed shapes ({count} or {nodes})"]
    m = good()
    m["vservices"][2]["nodes"] = ["login"]
    assert errors_of(m) == ["vservices[2].nodes: node group 'login' is not defined in nodes (compute, service)"]


def test_config_checked_against_role_spec():
    catalog = dict(CATALOG, slurm=dict(CATALOG["slurm"], argument_spec={"slurm_partitions": {"required": True}}))

    def validate_spec(spec, params):
        missing = [k for k, v in spec.items() if v.get("required") and k not in params]
        unknown = [(k, "unknown setting") for k in params if k not in spec]
        return unknown + ([("", "missing required arguments: %s" % ", ".join(missing))] if missing else [])
    m = good()
    m["vservices"][1]["config"] = {"partitons": []}
    assert errors_of(m, catalog, validate_spec=validate_spec) == [
        "vservices[1].config.partitons: unknown setting",
        "vservices[1].config: missing required arguments: partitions"]


def test_cycle_is_reported():
    m = good()
    m["vservices"][1]["after"] = ["pyxis"]
    with pytest.raises(ManifestError, match="dependency cycle"):
        apply_order(m, CATALOG)


def test_version_compatibility():
    assert version_compatible("1.0", "1.2") and version_compatible("1", "1.0.1")
    assert not version_compatible("1.3", "1.2") and not version_compatible("2.0", "1.9")


def test_shipped_schema_file_matches():
    shipped = json.loads((ROOT / "schemas" / "vcluster.schema.json").read_text())
    assert shipped == json.loads(json.dumps(SCHEMA))


def test_node_groups_boot_their_own_image_and_kernel_parameters():
    m = good()
    m["kernel_params"] = "console=ttyS0"
    m["nodes"]["compute"].update(image={"name": "gh200", "tag": "2026.11"}, kernel_params="iommu=pt")
    out = validate(m, CATALOG)
    assert out["boot_by_group"] == {
        "compute": {"image": {"name": "gh200", "tag": "2026.11"}, "kernel_params": "iommu=pt"},
        "service": {"image": {"name": "compute-base", "tag": "2026.11"}, "kernel_params": "console=ttyS0"}}


def test_kernel_parameters_are_one_line_without_root():
    m = good()
    m["kernel_params"] = "console=ttyS0 root=/dev/sda1"
    m["nodes"]["compute"]["kernel_params"] = "quiet\nrm -rf /"
    m["nodes"]["compute"]["image"] = {"name": "Bad Name"}
    errs = errors_of(m)
    # the newline is named twice: as a control character (first pass) and by the field's own pattern
    fields = ["nodes.compute.kernel_params", "kernel_params", "nodes.compute.image", "nodes.compute.image.name",
              "nodes.compute.kernel_params"]
    assert [e.split(":")[0] for e in errs] == fields, errs
    assert "without root=" in errs[1]
