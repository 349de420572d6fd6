"""The inventory model without Ansible: group naming, host naming, filters, cache keys."""
import random

import pytest

from ansible_collections.hpc.vcluster.plugins.plugin_utils import _inventory as inv


def spec(name="s", prefix="", **options):
    return inv.SiteSpec(name, dict({"site_kind": "openchami", "api_url": "https://%s.example" % name}, **options),
                        prefix, inv.normalise_filters({}))


def node(xname, nid=None, labels=(), partition="", hostname=None, **fields):
    comp = dict({"ID": xname, "Type": "Node"}, **fields)
    if nid is not None:
        comp["NID"] = nid
    member = {"id": xname, "groupLabels": list(labels), "partitionName": partition}
    ifaces = []
    if hostname is not None:
        ifaces.append({"ID": xname, "MACAddress": "02:00:00:00:00:%02x" % (nid or 0), "Description": hostname,
                       "ComponentID": xname, "Type": "Node", "IPAddresses": [{"IPAddress": "10.0.0.%d" % (nid or 0), "Network": "NMN"}]})
    return comp, member, ifaces


def site_data(nodes, site=None):
    comps, members, ifaces = [], [], []
    for comp, member, iface in nodes:
        comps.append(comp)
        members.append(member)
        ifaces.extend(iface)
    return inv.SiteData(site or spec(), comps, members, ifaces)


def test_group_names_do_not_depend_on_node_order():
    labels = ["vc-blue", "vc_blue", "vc.blue", "3d", "all", "ok"]
    results = set()
    for seed in range(5):
        nodes = [node("x1000c0s%db0n0" % i, i + 1, labels=[lbl]) for i, lbl in enumerate(labels)]
        random.Random(seed).shuffle(nodes)
        model = inv.build_model([site_data(nodes)], inv.Settings(group_by=["label"]))
        results.add(tuple(sorted((h[0], tuple(h[2])) for h in model.hosts)))
    assert len(results) == 1
    groups = dict(next(iter(results)))
    assert groups["nid000002"] == ("vc_blue",) and groups["nid000001"] == ("vc_blue_2",) and groups["nid000003"] == ("vc_blue_3",)
    assert groups["nid000004"] == ("_3d",) and groups["nid000005"] == ("label_all",) and groups["nid000006"] == ("ok",)


@pytest.mark.parametrize("raw, kind, wanted", [
    ("vc-blue", "label", "vc_blue"), ("p2.1", "partition", "p2_1"), ("9lives", "label", "_9lives"),
    ("a:b", "label", "a_b"), ("ungrouped", "label", "label_ungrouped"), ("all", "site", "site_all"),
])
def test_convert_group_name(raw, kind, wanted):
    assert inv.convert_group_name(raw, kind) == wanted and inv.VALID_GROUP_RE.match(wanted)


def test_a_name_shared_anywhere_in_the_reply_names_no_node():
    nodes = [node("x1000c0s0b0n0", 1, labels=["a"], hostname="login"),
             node("x1000c0s1b0n0", 2, labels=["b"], hostname="login"),
             node("x1000c0s2b0n0", 3, labels=["a"], hostname="c3")]
    model = inv.build_model([site_data(nodes)], inv.Settings(include_labels=["a"]))
    assert sorted(h[0] for h in model.hosts) == ["c3", "nid000001"]     # x1000c0s1b0n0 is not selected, still shares
    assert any("hostname 'login' (2 nodes)" in w for w in model.warnings)


def test_cross_kind_collision_moves_to_next_preference():
    # node 2 has no hostname and takes nid000002; node 1's Description claims "nid000002" too
    nodes = [node("x1000c0s0b0n0", 1, hostname="nid000002"), node("x1000c0s1b0n0", 2)]
    model = inv.build_model([site_data(nodes)], inv.Settings(hostnames=["hostname", "nid"]))
    names = {h[1]["smd_xname"]: h[0] for h in model.hosts}
    assert names == {"x1000c0s0b0n0": "nid000001", "x1000c0s1b0n0": "nid000002"}   # the NID is the stronger claim
    assert any("hostname 'nid000002' (2 nodes)" in w for w in model.warnings)


def test_names_from_several_sites_are_qualified_and_stay_unique():
    a, b = spec("a", "a_"), spec("b", "b_")
    data = [site_data([node("x1000c0s0b0n0", 1), node("x1000c0s1b0n0", 2)], a),
            site_data([node("x1000c0s0b0n0", 1), node("x9000c0s0b0n0", 7)], b)]
    model = inv.build_model(data, inv.Settings())
    assert sorted(h[0] for h in model.hosts) == ["nid000001.a", "nid000001.b", "nid000002", "nid000007"]
    assert {h[1]["vcluster_site"] for h in model.hosts if h[0] == "nid000002"} == {"a"}
    assert set(model.groups) == {"a_site_a", "b_site_b"}


def test_normalise_filters():
    assert inv.normalise_filters({"Role": "Compute", "enabled": False, "nid": [1, 2]}) == {
        "role": ["Compute"], "enabled": ["false"], "nid": ["1", "2"], "type": ["Node"]}
    assert inv.normalise_filters('{"type": "VirtualNode"}') == {"type": ["VirtualNode"]}
    with pytest.raises(inv.InventoryOptionError, match="must be a value or a list"):
        inv.normalise_filters({"role": {"a": 1}})


def test_cache_digest_depends_on_query_shape_not_credentials():
    base = spec("s")
    same = inv.SiteSpec("s", dict(base.options, token="t", client_secret="x"), "p_", base.filters)
    other_filters = inv.SiteSpec("s", base.options, "", inv.normalise_filters({"role": "Compute"}))
    other_smd = inv.SiteSpec("s", dict(base.options, service_urls={"smd": "/x/hsm/v2"}), "", base.filters)
    assert inv.cache_digest(base) == inv.cache_digest(same)
    assert len({inv.cache_digest(base), inv.cache_digest(other_filters), inv.cache_digest(other_smd)}) == 3


def test_management_network_and_fallback():
    comps = [{"ID": "x1", "Type": "Node", "NID": 1}, {"ID": "x2", "Type": "Node", "NID": 2}]
    ifaces = [
        {"ComponentID": "x1", "MACAddress": "02:00:00:00:00:02", "Description": "", "IPAddresses": [{"IPAddress": "10.254.0.1", "Network": "HMN"}]},
        {"ComponentID": "x1", "MACAddress": "02:00:00:00:00:01", "Description": "", "IPAddresses": [{"IPAddress": "10.252.0.1", "Network": "nmn"}]},
        {"ComponentID": "x2", "MACAddress": "02:00:00:00:00:03", "Description": "", "IPAddresses": [{"IPAddress": "10.254.0.2", "Network": "HMN"}]},
    ]
    model = inv.build_model([inv.SiteData(spec(), comps, [], ifaces)], inv.Settings())
    hv = {h[0]: h[1] for h in model.hosts}
    assert hv["nid000001"]["ansible_host"] == "10.252.0.1" and hv["nid000001"]["smd_mac"] == "02:00:00:00:00:01"
    assert hv["nid000002"]["ansible_host"] == "10.254.0.2"                 # no NMN address: its first address
    model = inv.build_model([inv.SiteData(spec(), comps, [], ifaces)], inv.Settings(management_network="HMN"))
    assert {h[0]: h[1]["smd_ip"] for h in model.hosts}["nid000001"] == "10.254.0.1"


def test_url_credentials_never_reach_a_message():
    assert inv.redact("cannot reach https://admin:pa55@api.example.org/x") == "cannot reach https://<redacted>@api.example.org/x"
    assert "pa55" not in inv.SiteSpec("s", {"api_url": "https://admin:pa55@api.example.org"}, "", {}).label()
