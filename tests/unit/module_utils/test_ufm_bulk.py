"""UFM client: removing any number of GUIDs from a PKey in one request where UFM allows it."""
import json
import re

import responses

from ansible_collections.hpc.vcluster.plugins.module_utils._smd import MAX_QUERY
from ansible_collections.hpc.vcluster.plugins.module_utils._ufm import UfmClient

from l1_helpers import URL, transport

UFM = URL + "/ufmRest"
GUIDS = ["0c42a103%08x" % i for i in range(1000)]


@responses.activate
def test_few_guids_in_the_url_many_in_the_legacy_body_and_chunks_only_without_it():
    responses.delete(UFM + "/resources/pkeys/0xa12/guids/" + ",".join(GUIDS[:3]), body="")
    responses.post(UFM + "/actions/remove_guids_from_pkey", body="")
    ufm = UfmClient(transport()[0], UFM, "admin", "pw")
    ufm.remove_guids("0xa12", GUIDS[:3])
    ufm.remove_guids("0xa12", GUIDS)
    assert len(responses.calls) == 2
    assert json.loads(responses.calls[1].request.body) == {"pkey": "0xa12", "guids": GUIDS}
    assert responses.calls[1].request.headers["Authorization"].startswith("Basic ")

    # a UFM that has dropped the deprecated call: DELETEs whose URLs stay short
    responses.replace(responses.POST, UFM + "/actions/remove_guids_from_pkey", status=405)
    responses.add(responses.DELETE, re.compile(re.escape(UFM) + "/resources/pkeys/0xa12/guids/.+"), body="")
    before = len(responses.calls)
    ufm.remove_guids("0xa12", GUIDS)
    deletes = [c.request for c in responses.calls[before + 1:]]
    assert len(deletes) > 1 and all(len(r.url) - len(UFM) < MAX_QUERY + 64 for r in deletes)
    assert sorted(g for r in deletes for g in r.url.rsplit("/", 1)[1].split(",")) == GUIDS
