# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for NVIDIA UFM's REST API (``/ufmRest``): InfiniBand PKeys and port GUIDs.

UFM authenticates with HTTP Basic (its own users), not with the site's bearer token, so
this client sends ``auth=False`` to the transport and Basic credentials instead. Contract
notes (research-csm.md §10.2, §11): ``GET resources/pkeys/{pkey}`` answers ``{}`` (200)
for a missing PKey; ``POST resources/pkeys`` adds GUIDs (creating the PKey) with a
``membership`` of ``full`` or ``limited``; ``DELETE resources/pkeys/{pkey}/guids/{g1,g2}``
removes them. A host's port GUIDs are in ``GET resources/ports`` (``system_name`` is the
host name). Adding any number of GUIDs is one request; removing them too, through the
GUID list in the URL when it fits, else UFM's ``POST actions/remove_guids_from_pkey``
(the list in the body; deprecated by NVIDIA but still served, and what ib-kubernetes
uses), and only where a UFM no longer has that, URLs of at most MAX_QUERY characters.
"""
from __future__ import annotations

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, decode_json
from ansible_collections.hpc.vcluster.plugins.module_utils._smd import MAX_QUERY


def normalize_pkey(value):
    """``0x0A12`` -> ``0xa12``; ValueError outside 0x1-0x7ffe."""
    text = str(value).strip().lower()
    number = int(text, 16)
    if not 0 < number < 0x7FFF:
        raise ValueError("pkey %s is out of range (0x1-0x7ffe)" % value)
    return "0x%x" % number


def normalize_guid(value):
    return str(value).strip().lower().replace("0x", "", 1) if str(value).strip().lower().startswith("0x") \
        else str(value).strip().lower()


class UfmClient(object):
    def __init__(self, transport, base_url, username, password):
        if not username or not password:
            raise ApiError("UFM needs ufm_username and ufm_password (HTTP Basic), not the site token")
        self.transport = transport
        self.base = base_url
        self.basic = (username, password)

    def _request(self, method, path, body=None, params=None, expect=None):
        return self.transport.request(method, self.base + path, service="ufm", json_body=body, params=params,
                                      auth=False, basic_auth=self.basic, expect=expect)

    def pkey(self, pkey):
        """The PKey with its GUIDs (``{"guids": [{"guid", "membership"}...]}``), or None."""
        body = decode_json(self._request("GET", "/resources/pkeys/%s" % pkey, params={"guids_data": "true"}), "ufm")
        return body or None

    def create_pkey(self, pkey, ip_over_ib=True, index0=False):
        body = {"pkey": pkey, "ip_over_ib": bool(ip_over_ib), "index0": bool(index0)}
        self._request("POST", "/resources/pkeys/add", body)

    def add_guids(self, pkey, guids, membership="full", ip_over_ib=True, index0=False):
        body = {"pkey": pkey, "guids": sorted(guids), "membership": membership, "ip_over_ib": bool(ip_over_ib),
                "index0": bool(index0)}
        self._request("POST", "/resources/pkeys", body)

    def remove_guids(self, pkey, guids):
        guids = sorted(guids)
        if len(",".join(guids)) <= MAX_QUERY:
            self._request("DELETE", "/resources/pkeys/%s/guids/%s" % (pkey, ",".join(guids)))
            return
        response = self._request("POST", "/actions/remove_guids_from_pkey", {"pkey": pkey, "guids": guids},
                                 expect=(200, 204, 404, 405))
        if response.status_code in (200, 204):
            return
        per_call = max(1, MAX_QUERY // (len(guids[0]) + 1))  # a UFM without the legacy call
        for start in range(0, len(guids), per_call):
            self._request("DELETE", "/resources/pkeys/%s/guids/%s" % (pkey, ",".join(guids[start:start + per_call])))

    def delete_pkey(self, pkey):
        self._request("DELETE", "/resources/pkeys/%s" % pkey, expect=(200, 204, 404))

    def ports(self):
        return decode_json(self._request("GET", "/resources/ports"), "ufm") or []

    def host_guids(self):
        """``{system_name: [port guid, ...]}`` of the host (computer) ports UFM knows."""
        result = {}
        for port in self.ports():
            name = port.get("system_name")
            guid = port.get("guid")
            if name and guid:
                result.setdefault(name, []).append(normalize_guid(guid))
        return result
