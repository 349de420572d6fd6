"""BSS client: null/404 mean none, SQL-aggregated and per-host entries flattened, PUT bodies, 5xx retried."""
import json

import responses

from ansible_collections.hpc.vcluster.plugins.module_utils._bss import BssClient

from l1_helpers import URL, transport

BP = URL + "/boot/v1/bootparameters"


@responses.activate
def test_null_and_404_mean_no_boot_parameters():
    responses.get(BP, body="null", content_type="application/json")
    responses.get(BP, status=404, json={"type": "about:blank", "title": "Not Found",
                                        "detail": "Cannot find boot parameters for requested Hosts", "status": 404})
    t = transport()[0]
    bss = BssClient(t, URL + "/boot/v1")
    assert bss.bootparameters() == []
    assert bss.by_host(["x1000c0s0b0n0"]) == {}


@responses.activate
def test_aggregated_entries_are_flattened_per_host_and_filtered():
    responses.get(BP, json=[{"hosts": ["x1000c0s0b0n0", "x1000c0s1b0n0", "x9"], "kernel": "k", "initrd": "i",
                             "params": "p", "cloud-init": {}}])
    t = transport()[0]
    result = BssClient(t, URL + "/boot/v1").by_host(["x1000c0s0b0n0", "x1000c0s1b0n0"])
    assert result == {"x1000c0s0b0n0": {"kernel": "k", "initrd": "i", "params": "p"},
                      "x1000c0s1b0n0": {"kernel": "k", "initrd": "i", "params": "p"}}
    assert "name=x1000c0s0b0n0%2Cx1000c0s1b0n0" in responses.calls[0].request.url


@responses.activate
def test_put_sends_sorted_hosts_and_given_fields_and_is_retried_on_503():
    responses.put(BP, status=503)
    responses.put(BP, status=200, body="")
    t, sleeps = transport()
    BssClient(t, URL + "/boot/v1").put(["b", "a"], kernel="k", params="p")
    assert json.loads(responses.calls[1].request.body) == {"hosts": ["a", "b"], "kernel": "k", "params": "p"}
    assert len(sleeps) == 1


@responses.activate
def test_csm_prefix_and_delete_body():
    responses.delete(URL + "/apis/bss/boot/v1/bootparameters", body="")
    t = transport("csm")[0]
    BssClient(t, URL + "/apis/bss/boot/v1").delete(["x2", "x1"])
    assert json.loads(responses.calls[0].request.body) == {"hosts": ["x1", "x2"]}


@responses.activate
def test_a_host_list_too_long_for_a_url_goes_in_the_body_of_one_get():
    hosts = ["x1000c0s%db0n0" % i for i in range(5000)]
    responses.get(BP, json=[{"hosts": hosts[:2] + ["x9"], "kernel": "k", "initrd": "i", "params": "p"}])
    t = transport()[0]
    result = BssClient(t, URL + "/boot/v1").by_host(hosts)
    assert len(responses.calls) == 1
    request = responses.calls[0].request
    assert "name=" not in request.url and len(request.url) < 100
    assert json.loads(request.body) == {"hosts": sorted(hosts)}
    assert sorted(result) == sorted(hosts[:2])   # x9 (not asked) is filtered out here too
