"""SMD client: node lists in request bodies or one unfiltered read, so a read costs one request at any size."""
import json
from urllib.parse import parse_qs, urlparse

import responses

from ansible_collections.hpc.vcluster.plugins.module_utils._labels import labels_of
from ansible_collections.hpc.vcluster.plugins.module_utils._smd import MAX_QUERY, SmdClient, nid_ranges
from ansible_collections.hpc.vcluster.plugins.module_utils._targets import resolve_nodes, unknown_nodes

from l1_helpers import URL, transport

SMD = URL + "/hsm/v2"
XNAMES = ["x1000c0s%db0n0" % i for i in range(3000)]


def test_nid_ranges_are_short_whatever_the_count():
    assert nid_ranges([7, 1, 2, 3, 3, 10, 11]) == ["1-3", "7", "10-11"]
    assert nid_ranges(range(1, 10001)) == ["1-10000"]
    assert nid_ranges([]) == []


@responses.activate
def test_unknown_nodes_is_one_query_post_with_the_ids_in_the_body():
    responses.post(SMD + "/State/Components/Query", json={"Components": [{"ID": x, "Type": "Node"} for x in XNAMES[1:]]})
    smd = SmdClient(transport()[0], SMD)
    assert unknown_nodes(smd, XNAMES) == [XNAMES[0]]
    assert len(responses.calls) == 1
    assert json.loads(responses.calls[0].request.body) == {"ComponentIDs": sorted(XNAMES), "type": ["Node"]}


@responses.activate
def test_nids_resolve_with_one_bynid_query_of_ranges():
    responses.post(SMD + "/State/Components/ByNID/Query", json={"Components": [
        {"ID": "x1000c0s%db0n0" % (n - 1), "Type": "Node", "NID": n} for n in range(1, 2001)]})
    smd = SmdClient(transport()[0], SMD)
    names = ["nid%06d" % n for n in range(1, 2001)]
    assert resolve_nodes(smd, names) == sorted("x1000c0s%db0n0" % i for i in range(2000))
    assert json.loads(responses.calls[0].request.body) == {"NIDRanges": ["1-2000"]}
    assert len(responses.calls) == 1


@responses.activate
def test_memberships_by_id_when_they_fit_in_a_url_else_all_of_them_in_one_call():
    responses.get(SMD + "/memberships", json=[{"id": x, "groupLabels": ["vc_a"], "partitionName": ""}
                                              for x in XNAMES] + [{"id": "x9c0s0b0n0", "groupLabels": ["z"]}])
    smd = SmdClient(transport()[0], SMD)
    few = labels_of(smd, XNAMES[:3])
    assert parse_qs(urlparse(responses.calls[0].request.url).query)["id"] == XNAMES[:3]
    assert set(few) >= set(XNAMES[:3])
    many = labels_of(smd, XNAMES)
    call = responses.calls[1].request
    assert parse_qs(urlparse(call.url).query) == {"type": ["Node"]} and len(call.url) < MAX_QUERY
    assert sorted(many) == sorted(XNAMES) and many[XNAMES[5]] == {"vc_a"}
    assert len(responses.calls) == 2
