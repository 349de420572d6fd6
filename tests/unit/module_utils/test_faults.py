"""A flaky site (issue #13): what the transport and the clients do with lost replies and short-lived tokens.

Recorded replies (``responses``) as the lab's fault switch gives them: a 500 or 503 problem before any
processing, and tokens of 30 s. A create whose reply was lost is read back and sent again only when the
object is absent; a query or end-state POST is retried as a GET is; a token request is retried; a 401
renews the token once.
"""
import json

import pytest
import responses

from ansible_collections.hpc.vcluster.plugins.module_utils._api import RETRY_LOG_ENV, ApiError, ReadBack, Transport
from ansible_collections.hpc.vcluster.plugins.module_utils._auth import ClientCredentials
from ansible_collections.hpc.vcluster.plugins.module_utils._fabric import FabricClient
from ansible_collections.hpc.vcluster.plugins.module_utils._pcs import PcsClient
from ansible_collections.hpc.vcluster.plugins.module_utils._site import Site
from ansible_collections.hpc.vcluster.plugins.module_utils._smd import SmdClient

URL = "https://site.example"
SMD = URL + "/hsm/v2"
FAULT = {"type": "about:blank", "title": "Internal Server Error", "status": 500,
         "detail": "lab fault injection: this request failed on purpose (error_rate 0.2)"}


def transport(token_source=None, retries=3):
    sleeps = []
    return Transport(Site("openchami", URL), token_source, retries=retries, sleep=sleeps.append), sleeps


def methods():
    return [(c.request.method, c.request.path_url) for c in responses.calls]


@responses.activate
def test_create_group_500_before_processing_is_read_back_and_sent_again():
    responses.post(SMD + "/groups", status=500, json=FAULT)
    responses.get(SMD + "/groups/vc1", status=404, json={"title": "Not Found", "status": 404})
    responses.post(SMD + "/groups", status=201, json=[{"URI": "/hsm/v2/groups/vc1"}])
    t, sleeps = transport()
    SmdClient(t, SMD).create_group("vc1", members=["x1000c0s0b0n0"])
    assert methods() == [("POST", "/hsm/v2/groups"), ("GET", "/hsm/v2/groups/vc1"), ("POST", "/hsm/v2/groups")]
    assert len(sleeps) == 1 and t.retry_count == 1


@responses.activate
def test_create_group_500_after_processing_is_read_back_and_not_sent_again():
    group = {"label": "vc1", "description": "", "members": {"ids": ["x1000c0s0b0n0"]}}
    responses.post(SMD + "/groups", status=500, json=FAULT)
    responses.get(SMD + "/groups/vc1", json=group)
    t, dummy = transport()
    SmdClient(t, SMD).create_group("vc1", members=["x1000c0s0b0n0"])
    assert methods() == [("POST", "/hsm/v2/groups"), ("GET", "/hsm/v2/groups/vc1")]
    assert t.retry_count == 0


@responses.activate
def test_add_member_reads_the_label_back():
    responses.post(SMD + "/groups/vc1/members", status=500, json=FAULT)
    responses.get(SMD + "/groups/vc1", json={"label": "vc1", "members": {"ids": []}})
    responses.post(SMD + "/groups/vc1/members", status=500, json=FAULT)
    responses.get(SMD + "/groups/vc1", json={"label": "vc1", "members": {"ids": ["x1000c0s0b0n0"]}})
    t, dummy = transport()
    SmdClient(t, SMD).add_member("vc1", "x1000c0s0b0n0")
    assert [m for m, dummy in methods()] == ["POST", "GET", "POST", "GET"]


@responses.activate
def test_a_create_without_read_back_is_still_not_retried_after_500():
    responses.post(URL + "/a", status=500, json=FAULT)
    t, dummy = transport()
    with pytest.raises(ApiError) as err:
        t.request("POST", URL + "/a")
    assert err.value.status == 500 and len(responses.calls) == 1


@responses.activate
def test_read_back_gives_up_after_the_retries_with_the_500():
    for dummy in range(4):
        responses.post(SMD + "/groups", status=500, json=FAULT)
    responses.get(SMD + "/groups/vc1", status=404, json={"title": "Not Found", "status": 404})
    t, dummy = transport(retries=3)
    with pytest.raises(ApiError) as err:
        SmdClient(t, SMD).create_group("vc1")
    assert err.value.status == 500 and "failed on purpose" in str(err.value)
    assert [m for m, dummy in methods()].count("POST") == 4


@responses.activate
def test_503_on_a_create_is_retried_without_read_back():
    responses.post(SMD + "/groups", status=503, json=dict(FAULT, status=503, title="Service Unavailable"))
    responses.post(SMD + "/groups", status=201, json=[])
    t, dummy = transport()
    SmdClient(t, SMD).create_group("vc1")
    assert [m for m, dummy in methods()] == ["POST", "POST"]


@responses.activate
def test_query_posts_are_idempotent():
    responses.post(SMD + "/State/Components/Query", status=500, json=FAULT)
    responses.post(SMD + "/State/Components/Query", json={"Components": [{"ID": "x1000c0s0b0n0"}]})
    responses.post(URL + "/power-control/v1/power-status", status=500, json=FAULT)
    responses.post(URL + "/power-control/v1/power-status", json={"status": [{"xname": "x1000c0s0b0n0", "powerState": "on"}]})
    t, dummy = transport()
    assert SmdClient(t, SMD).components_by_ids(["x1000c0s0b0n0"]) == [{"ID": "x1000c0s0b0n0"}]
    assert PcsClient(t, URL + "/power-control/v1").power_status(["x1000c0s0b0n0"])["x1000c0s0b0n0"]["powerState"] == "on"


@responses.activate
def test_power_on_is_retried_after_500_but_a_restart_is_not():
    pcs = URL + "/power-control/v1"
    responses.post(pcs + "/transitions", status=500, json=FAULT)
    responses.post(pcs + "/transitions", json={"transitionID": "t1", "operation": "On"})
    t, dummy = transport()
    assert PcsClient(t, pcs).transition("on", ["x1000c0s0b0n0"]) == "t1"
    responses.post(pcs + "/transitions", status=500, json=FAULT)
    with pytest.raises(ApiError):
        PcsClient(t, pcs).transition("hard-restart", ["x1000c0s0b0n0"])


@responses.activate
def test_fabric_vlan_create_read_back_returns_what_was_read():
    fabric = URL + "/apis/fabric-manager"
    vlan = {"id": 230, "name": "vc1", "status": "ONLINE", "documentSelfLink": "/fabric/vlans/230"}
    responses.post(fabric + "/fabric/vlans", status=500, json=FAULT)
    responses.get(fabric + "/fabric/vlans/230", json=vlan)
    t, dummy = transport()
    assert FabricClient(t, fabric).create_vlan(230, "vc1") == vlan
    assert [m for m, dummy in methods()] == ["POST", "GET"]


@responses.activate
def test_connection_lost_after_sending_a_create_is_read_back():
    import requests
    responses.post(SMD + "/groups", body=requests.exceptions.ConnectionError("Connection aborted."))
    responses.get(SMD + "/groups/vc1", json={"label": "vc1", "members": {"ids": []}})
    t, dummy = transport()
    reply = t.request("POST", SMD + "/groups", service="smd", json_body={"label": "vc1"},
                      read_back=lambda: SmdClient(t, SMD).group("vc1"))
    assert isinstance(reply, ReadBack) and reply.json()["label"] == "vc1"


@responses.activate
def test_retry_log_counts_retries_read_backs_and_refreshes(tmp_path, monkeypatch):
    log = tmp_path / "retries.jsonl"
    monkeypatch.setenv(RETRY_LOG_ENV, str(log))
    responses.get(SMD + "/groups", status=503, json=FAULT)
    responses.get(SMD + "/groups", json=[])
    responses.post(SMD + "/groups", status=500, json=FAULT)
    responses.get(SMD + "/groups/vc1", status=404)
    responses.post(SMD + "/groups", status=201)
    t, dummy = transport()
    SmdClient(t, SMD).groups()
    SmdClient(t, SMD).create_group("vc1")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["event"], e["method"], e["status"]) for e in events] == [
        ("retry", "GET", 503), ("read-back", "POST", 500), ("retry", "POST", 500)]
    assert all(set(e) == {"time", "event", "method", "path", "status"} for e in events)


class Clock(object):
    def __init__(self):
        self.now = 1000.0

    def time(self):
        return self.now


@responses.activate
def test_short_lived_tokens_are_reused_for_most_of_their_life(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("ansible_collections.hpc.vcluster.plugins.module_utils._auth.time.time", clock.time)
    responses.post(URL + "/token", json={"access_token": "t1", "expires_in": 30})
    responses.post(URL + "/token", json={"access_token": "t2", "expires_in": 30})
    cc = ClientCredentials(URL + "/token", "c", "s", sleep=lambda s: None)
    assert cc.get() == "t1"
    clock.now += 20
    assert cc.get() == "t1" and cc.fetch_count == 1
    clock.now += 3  # 7 s left: less than a quarter of its life
    assert cc.get() == "t2" and cc.fetch_count == 2


@responses.activate
def test_token_request_is_retried_on_5xx():
    sleeps = []
    responses.post(URL + "/token", status=503, json=FAULT)
    responses.post(URL + "/token", status=500, json=FAULT)
    responses.post(URL + "/token", json={"access_token": "t1", "expires_in": 30})
    cc = ClientCredentials(URL + "/token", "c", "s3cr3t", sleep=sleeps.append)
    assert cc.get() == "t1" and len(sleeps) == 2


@responses.activate
def test_token_request_gives_up_with_a_readable_secret_free_error():
    for dummy in range(3):
        responses.post(URL + "/token", status=500, json=FAULT)
    cc = ClientCredentials(URL + "/token", "c", "s3cr3t", sleep=lambda s: None, retries=2)
    with pytest.raises(ApiError) as err:
        cc.get()
    assert err.value.status == 500 and "s3cr3t" not in str(err.value) and len(responses.calls) == 3


@responses.activate
def test_expired_token_mid_run_401_renews_once_and_the_call_goes_through():
    responses.post(URL + "/token", json={"access_token": "old", "expires_in": 30})
    responses.post(URL + "/token", json={"access_token": "new", "expires_in": 30})
    responses.get(SMD + "/groups", status=401, body="token is expired")
    responses.get(SMD + "/groups", json=[], match=[responses.matchers.header_matcher({"Authorization": "Bearer new"})])
    cc = ClientCredentials(URL + "/token", "c", "s", sleep=lambda s: None)
    t, dummy = transport(cc)
    assert SmdClient(t, SMD).groups() == []
    assert cc.fetch_count == 2


@responses.activate
def test_a_delete_sent_again_after_a_500_that_finds_nothing_took_effect():
    # a real site may fail after acting (the lab never does): the second DELETE's 404 is the first's success
    responses.delete(SMD + "/groups/vc1", status=500, json=FAULT)
    responses.delete(SMD + "/groups/vc1", status=404, json={"title": "Not Found", "status": 404})
    t, sleeps = transport()
    reply = t.request("DELETE", SMD + "/groups/vc1")
    assert isinstance(reply, ReadBack) and reply.json() is None
    assert methods() == [("DELETE", "/hsm/v2/groups/vc1")] * 2 and len(sleeps) == 1


@responses.activate
def test_a_first_delete_404_is_still_an_error_and_a_503_proves_nothing():
    responses.delete(SMD + "/groups/vc1", status=404, json={"title": "Not Found", "status": 404})
    t, dummy = transport()
    with pytest.raises(ApiError) as err:
        t.request("DELETE", SMD + "/groups/vc1")
    assert err.value.status == 404
    # a 503 is "not processed": a 404 after it is the object's own absence
    responses.replace(responses.DELETE, SMD + "/groups/vc1", status=503, json={"status": 503})
    responses.add(responses.DELETE, SMD + "/groups/vc1", status=404, json={"title": "Not Found", "status": 404})
    with pytest.raises(ApiError) as err:
        t.request("DELETE", SMD + "/groups/vc1")
    assert err.value.status == 404
