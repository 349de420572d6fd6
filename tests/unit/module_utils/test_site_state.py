"""The site's state for a vCluster as one hash: what changes it (a change by hand on the site) and what does not."""
import copy

from ansible_collections.hpc.vcluster.plugins.module_utils._releases import make_record, same_content
from ansible_collections.hpc.vcluster.plugins.module_utils._site_state import fingerprint, site_state

N0, N1, N2 = ("x1000c0s%db0n0" % i for i in range(3))
POLICY = "/fabric/port-policies/blue"


class Site:
    """The reads a site_state makes (the BSS, PCS and fabric clients' methods), from plain data; each read is noted."""

    def __init__(self):
        self.boot = {N0: {"kernel": "k1", "initrd": "i1", "params": "p"}, N1: {"kernel": "k1", "initrd": "i1", "params": "p"}}
        self.power = {N0: "on", N1: "on"}
        self.vlan_doc = {"id": 240, "name": "blue"}
        self.policy_doc = {"allowedVlans": ["/fabric/vlans/240"], "nativeVlanId": "/fabric/vlans/240"}
        self.ports = {N0: [POLICY], N1: [POLICY], N2: []}
        self.reads = []
        self.bss = self.pcs = self.fabric = self

    def by_host(self, hosts):
        self.reads.append("bss")
        return dict((h, self.boot[h]) for h in hosts if h in self.boot)

    def power_status(self, xnames):
        self.reads.append("pcs")
        return dict((x, {"xname": x, "powerState": self.power.get(x, "undefined")}) for x in xnames)

    def vlan(self, vlan_id):
        self.reads.append("vlan")
        return self.vlan_doc if self.vlan_doc and self.vlan_doc["id"] == vlan_id else None

    def policy(self, label):
        self.reads.append("policy")
        return self.policy_doc if label == "blue" else None

    def edge_ports(self, xnames=None):
        self.reads.append("ports")
        return dict((x, {"portPolicyLinks": list(links)}) for x, links in self.ports.items())


def digest(site, members=(N0, N1), label_members=(N1, N0), network=None):
    group = {"label": "blue", "members": {"ids": list(label_members)}}
    return fingerprint(site_state(site, "blue", group, list(members), {"vlan": 240} if network is None else network))


def test_the_same_site_hashes_the_same_whatever_the_order():
    site = Site()
    first = digest(site)
    assert first.startswith("sha256:") and len(first) == 71
    assert digest(site, members=(N1, N0), label_members=(N0, N1)) == first
    assert set(site.reads) == {"bss", "pcs", "vlan", "policy", "ports"}


def test_each_change_by_hand_changes_the_hash():
    base = digest(Site())
    changes = []
    for change in ("boot", "power", "vlan", "policy", "port", "stranger", "label"):
        site = Site()
        if change == "boot":
            site.boot[N1] = dict(site.boot[N1], kernel="k2")
        elif change == "power":
            site.power[N1] = "off"
        elif change == "vlan":
            site.vlan_doc = None
        elif change == "policy":
            site.policy_doc = dict(site.policy_doc, nativeVlanId=None)
        elif change == "port":
            site.ports[N1] = []
        elif change == "stranger":  # a node outside the vCluster put on its VLAN
            site.ports[N2] = [POLICY]
        changes.append(digest(site, label_members=(N0,) if change == "label" else (N0, N1)))
    assert base not in changes and len(set(changes)) == len(changes)


def test_a_label_that_is_gone_is_a_change():
    site = Site()
    gone = fingerprint(site_state(site, "blue", None, [N0, N1], {"vlan": 240}))
    assert gone.startswith("sha256:") and gone != digest(site) and gone == digest(site, label_members=())


def test_a_node_without_boot_parameters_and_no_network():
    site = Site()
    del site.boot[N1]
    assert digest(site, network={}) != digest(Site(), network={})
    assert "ports" not in site.reads


def test_a_pkey_segment_is_not_hashed():
    site = Site()
    assert digest(site, network={"pkey": "0x7fff"}) == ""
    assert site.reads == []


def test_the_record_keeps_it_and_an_unchanged_site_writes_nothing():
    params = {"operation": "deploy", "result": "success", "manifest_digest": "sha256:m", "nodes": {N0: "compute"},
              "site_fingerprint": "sha256:s1"}
    first = make_record("blue", 1, params, [])
    assert first["site_fingerprint"] == "sha256:s1"
    assert same_content(first, make_record("blue", 2, params, [first]))
    assert not same_content(first, make_record("blue", 2, dict(params, site_fingerprint="sha256:s2"), [first]))
    # a record from before site fingerprints counts as none
    old = copy.deepcopy(first)
    del old["site_fingerprint"]
    assert same_content(old, make_record("blue", 2, dict(params, site_fingerprint=""), [old]))
