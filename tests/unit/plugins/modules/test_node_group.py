"""node_group: exact/add/remove members, diff, check mode, idempotence, CSM per-node fallback, conflicts, RBAC."""
import base64
import json

import pytest

from ansible_collections.hpc.vcluster.plugins.modules import node_group

from vc_harness import FakeSmd, Failed, run

N0, N1, N2, N3 = ("x1000c0s%db0n0" % i for i in range(4))


def jwt(claims):
    def part(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return "%s.%s.sig" % (part({"alg": "none"}), part(claims))


@pytest.mark.parametrize("kind", ["openchami", "csm"])
def test_create_then_idempotent(rsps, kind):
    smd = FakeSmd(rsps, kind)
    args = {"label": "vc_blue", "exclusive_group": "vcluster", "members": [N0, N1], "description": "blue"}
    first = run(node_group.main, args, kind=kind)
    assert first["changed"] and first["created"] and first["added"] == [N0, N1]
    assert first["diff"]["before"] == {} and first["diff"]["after"]["members"] == [N0, N1]
    assert smd.groups["vc_blue"]["members"]["ids"] == [N0, N1]
    assert smd.groups["vc_blue"]["exclusiveGroup"] == "vcluster"
    writes = len(smd.writes)
    second = run(node_group.main, args, kind=kind)
    assert second["changed"] is False and "diff" not in second
    assert len(smd.writes) == writes  # nothing sent


def test_exact_members_openchami_uses_one_put(rsps):
    smd = FakeSmd(rsps, "openchami")
    smd.add_group("vc_blue", [N0, N1])
    res = run(node_group.main, {"label": "vc_blue", "members": [N1, N2]})
    assert res["changed"] and res["added"] == [N2] and res["removed"] == [N0]
    assert [w[0] for w in smd.writes] == ["PUT"]
    assert smd.writes[0][2] == {"group": "vc_blue", "ids": [N1, N2]}
    assert res["diff"]["before"]["members"] == [N0, N1] and res["diff"]["after"]["members"] == [N1, N2]


def test_exact_members_csm_falls_back_to_per_node_calls_adding_first(rsps):
    smd = FakeSmd(rsps, "csm")
    smd.add_group("vc_blue", [N0, N1])
    res = run(node_group.main, {"label": "vc_blue", "members": [N1, N2, N3]}, kind="csm")
    assert res["changed"] and res["added"] == [N2, N3] and res["removed"] == [N0]
    # CSM's SMD has no bulk member PUT: the client never tries it on a csm site
    assert [(w[0], w[1]) for w in smd.writes] == [
        ("POST", "/groups/vc_blue/members"), ("POST", "/groups/vc_blue/members"),
        ("DELETE", "/groups/vc_blue/members/" + N0)]
    assert sorted(smd.groups["vc_blue"]["members"]["ids"]) == [N1, N2, N3]


def test_add_and_remove_modes_and_nid_input(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0])
    res = run(node_group.main, {"label": "vc_blue", "members": ["x1000c0s[1-2]b0n0"], "members_mode": "add"})
    assert res["added"] == [N1, N2] and res["removed"] == []
    res = run(node_group.main, {"label": "vc_blue", "members": ["nid000002", "4"], "members_mode": "remove"})
    assert res["removed"] == [N1] and res["group"]["members"] == [N0, N2]
    res = run(node_group.main, {"label": "vc_blue", "members": [N3], "members_mode": "remove"})
    assert res["changed"] is False


def test_check_mode_predicts_and_changes_nothing(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0], description="old")
    res = run(node_group.main, {"label": "vc_blue", "members": [N1], "description": "new"}, check=True)
    assert res["changed"] and res["added"] == [N1] and res["removed"] == [N0]
    assert res["diff"]["after"]["description"] == "new"
    assert smd.writes == []
    res = run(node_group.main, {"label": "vc_new", "members": [N1]}, check=True)
    assert res["created"] and smd.writes == [] and "vc_new" not in smd.groups


def test_exclusive_conflict_is_refused_and_explained_before_any_change(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_red", [N1], exclusive="vcluster")
    smd.add_group("vc_blue", [N0], exclusive="vcluster")
    with pytest.raises(Failed) as err:
        run(node_group.main, {"label": "vc_blue", "members": [N0, N1]})
    msg = err.value.result["msg"]
    assert "conflict" in msg and N1 in msg and "vc_red" in msg and "Nothing was changed" in msg
    assert smd.writes == []


def test_non_exclusive_overlap_is_fine(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("compute", [N0, N1])
    res = run(node_group.main, {"label": "vc_blue", "exclusive_group": "vcluster", "members": [N0]})
    assert res["changed"] and smd.groups["vc_blue"]["members"]["ids"] == [N0]


def test_changing_exclusive_group_is_refused(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0], exclusive="vcluster")
    with pytest.raises(Failed) as err:
        run(node_group.main, {"label": "vc_blue", "exclusive_group": "other"})
    assert "cannot change" in err.value.result["msg"] and smd.writes == []


def test_unknown_nodes_and_bad_labels_are_refused(rsps):
    smd = FakeSmd(rsps)
    with pytest.raises(Failed) as err:
        run(node_group.main, {"label": "vc_blue", "members": ["x9999c0s0b0n0"]})
    assert "x9999c0s0b0n0" in err.value.result["msg"]
    with pytest.raises(Failed) as err:
        run(node_group.main, {"label": "VC_Blue"})
    assert "lower case" in err.value.result["msg"]
    with pytest.raises(Failed) as err:
        run(node_group.main, {"label": "vc_blue", "members": ["node-a"]})
    assert "not a node xname" in err.value.result["msg"]
    assert smd.writes == []


def test_dash_label_warns(rsps):
    FakeSmd(rsps)
    res = run(node_group.main, {"label": "vc-blue"})
    assert any("CFS" in w for w in res.get("warnings", []))


def test_absent_deletes_and_is_idempotent(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0, N1])
    res = run(node_group.main, {"label": "vc_blue", "state": "absent"})
    assert res["changed"] and res["deleted"] and res["removed"] == [N0, N1] and res["diff"]["after"] == {}
    assert "vc_blue" not in smd.groups
    assert run(node_group.main, {"label": "vc_blue", "state": "absent"})["changed"] is False


def test_rbac_allow_list_refuses_before_any_call(rsps):
    smd = FakeSmd(rsps)
    with pytest.raises(Failed) as err:
        run(node_group.main, {"label": "vc_red", "members": [N0], "allowed_labels": ["vc_blue"]})
    assert "access denied" in err.value.result["msg"] and "vc_red" in err.value.result["msg"]
    assert len(rsps.calls) == 0 and smd.writes == []


def test_rbac_from_token_roles(rsps, monkeypatch):
    smd = FakeSmd(rsps)
    alice = jwt({"sub": "a", "preferred_username": "alice", "exp": 4102444800,
                 "realm_access": {"roles": ["vc_blue", "offline_access", "default-roles-shasta"]}})
    with pytest.raises(Failed) as err:
        run(node_group.main, {"label": "vc_red", "token": alice, "rbac_from_token": True})
    assert "alice" in err.value.result["msg"] and len(rsps.calls) == 0
    res = run(node_group.main, {"label": "vc_blue", "members": [N0], "token": alice, "rbac_from_token": True})
    assert res["changed"]
    admin = jwt({"sub": "x", "exp": 4102444800, "realm_access": {"roles": ["pa_admin"]}})
    assert run(node_group.main, {"label": "vc_red", "token": admin, "rbac_from_token": True})["changed"]
    # both sources: the allow-list narrows an admin token
    with pytest.raises(Failed):
        run(node_group.main, {"label": "vc_green", "token": admin, "rbac_from_token": True, "allowed_labels": ["vc_red"]})


def test_rbac_refuses_taking_nodes_from_a_label_not_managed(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_red", [N1], exclusive="vcluster")
    with pytest.raises(Failed) as err:
        run(node_group.main, {"label": "vc_blue", "exclusive_group": "other", "members": [N1],
                              "allowed_labels": ["vc_blue"]})
    assert "may not take nodes" in err.value.result["msg"] and smd.writes == []


def test_rbac_from_token_refuses_opaque_tokens(rsps):
    FakeSmd(rsps)
    with pytest.raises(Failed) as err:
        run(node_group.main, {"label": "vc_blue", "token": "opaque", "rbac_from_token": True})
    assert "not a JWT" in err.value.result["msg"] and len(rsps.calls) == 0


# ---------------------------------------------------------------- node_group_info
from ansible_collections.hpc.vcluster.plugins.modules import node_group_info  # noqa: E402


def test_info_lists_groups_and_free_nodes(rsps):
    smd = FakeSmd(rsps)
    smd.components[3]["Arch"] = "ARM"
    smd.add_group("vc_blue", [N0], exclusive="vcluster")
    smd.add_group("compute", [N0, N1, N2, N3])
    res = run(node_group_info.main, {"exclusive_group": "vcluster"})
    assert [g["label"] for g in res["groups"]] == ["compute", "vc_blue"]
    assert res["free_xnames"] == [N1, N2, N3]
    assert res["free_nodes"][0]["labels"] == ["compute"] and res["free_nodes"][0]["nid"] == 2
    res = run(node_group_info.main, {"arch": ["X86"], "free": True})
    assert res["free_xnames"] == [N1, N2]
    assert res["changed"] is False and smd.writes == []


def test_info_respects_access_control(rsps):
    smd = FakeSmd(rsps)
    smd.add_group("vc_blue", [N0], exclusive="vcluster")
    smd.add_group("vc_red", [N1], exclusive="vcluster")
    res = run(node_group_info.main, {"allowed_labels": ["vc_blue"], "free": False})
    assert [g["label"] for g in res["groups"]] == ["vc_blue"]
    with pytest.raises(Failed):
        run(node_group_info.main, {"allowed_labels": ["vc_blue"], "labels": ["vc_red"]})
