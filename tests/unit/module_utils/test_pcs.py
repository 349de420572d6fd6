"""PCS client: power-status in one POST with per-item errors, transition 200 reply, waiting, un-supported counts."""
import json

import pytest
import responses

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError
from ansible_collections.hpc.vcluster.plugins.module_utils._pcs import PcsClient, task_counts, task_results
from ansible_collections.hpc.vcluster.plugins.module_utils._wait import WaitTimeout

from l1_helpers import URL, transport

PCS = URL + "/power-control/v1"


@responses.activate
def test_power_status_is_one_post_whatever_the_count_with_missing_items_reported():
    responses.post(PCS + "/power-status", json={"status": [{"xname": "x0", "powerState": "on", "error": ""}]})
    t = transport()[0]
    pcs = PcsClient(t, PCS)
    many = ["x%d" % i for i in range(10000)]
    status = pcs.power_status(many + ["x0"])
    assert len(responses.calls) == 1
    assert json.loads(responses.calls[0].request.body) == {"xname": sorted(many)}
    assert status["x0"]["powerState"] == "on"
    assert status["x2"]["error"] == "not reported by PCS"
    assert pcs.power_status([]) == {} and len(responses.calls) == 1


@responses.activate
def test_transition_body_and_reply_without_id_is_an_error():
    responses.post(PCS + "/transitions", json={"transitionID": "t-1", "operation": "Soft-Restart"})
    responses.post(PCS + "/transitions", json={})
    t = transport()[0]
    pcs = PcsClient(t, PCS)
    assert pcs.transition("Soft-Restart", ["x1", "x0"], 5) == "t-1"
    assert json.loads(responses.calls[0].request.body) == {
        "operation": "soft-restart", "location": [{"xname": "x0"}, {"xname": "x1"}], "taskDeadlineMinutes": 5}
    with pytest.raises(ApiError):
        pcs.transition("on", ["x0"])
    with pytest.raises(ValueError):
        pcs.transition("explode", ["x0"])


@responses.activate
def test_wait_polls_until_completed_and_times_out():
    reply = {"transitionID": "t", "transitionStatus": "completed",
             "taskCounts": {"total": 2, "succeeded": 1, "un-supported": 1},
             "tasks": [{"xname": "x0", "taskStatus": "succeeded", "taskStatusDescription": "Transition confirmed, On"},
                       {"xname": "x1", "taskStatus": "unsupported", "error": "no BMC"}]}
    responses.get(PCS + "/transitions/t", json={"transitionStatus": "in-progress"})
    responses.get(PCS + "/transitions/t", json=reply)
    t = transport()[0]
    sleeps = []
    final = PcsClient(t, PCS).wait("t", timeout=60, interval=1, sleep=sleeps.append)
    assert final["transitionStatus"] == "completed" and sleeps == [1]
    assert task_counts(final)["un-supported"] == 1 and task_counts(final)["failed"] == 0
    assert task_results(final)["x1"] == {"status": "unsupported", "description": "", "error": "no BMC"}
    responses.get(PCS + "/transitions/u", json={"transitionStatus": "in-progress"})
    clock = iter([0, 0, 100])
    with pytest.raises(WaitTimeout) as err:
        PcsClient(t, PCS).wait("u", timeout=10, sleep=lambda s: None, clock=lambda: next(clock))
    assert err.value.last["transitionStatus"] == "in-progress" and "10s" in str(err.value)


@responses.activate
def test_problem_detail_of_pcs_is_readable():
    responses.post(PCS + "/transitions", status=400, content_type="application/problem+json",
                   json={"type": "about:blank", "title": "Bad Request", "detail": "invalid Operation type x",
                         "status": 400})
    t = transport()[0]
    with pytest.raises(ApiError) as err:
        PcsClient(t, PCS).transition("on", ["x0"])
    assert str(err.value) == "PCS POST /power-control/v1/transitions: 400 Bad Request: Bad Request: invalid Operation type x"
