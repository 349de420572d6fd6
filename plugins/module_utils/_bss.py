# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for BSS, the Boot Script Service (``/boot/v1`` on OpenCHAMI, ``/apis/bss/boot/v1`` on CSM).

What differs between the real services and matters here (research-openchami.md §3,
research-csm.md §7):

* ``GET /bootparameters`` answers ``null`` when the store is empty and **404** when a
  ``name=`` filter matches nothing; both mean "no boot parameters".
* The SQL backend (OpenCHAMI) returns one entry per distinct boot configuration with all
  of its hosts aggregated; the etcd backend (CSM) one entry per host. ``by_host`` flattens both.
* ``POST`` only creates (existing hosts are silently ignored), ``PUT`` creates or replaces
  kernel/initrd/params, and ``PATCH`` differs: OpenCHAMI updates the non-empty fields of
  existing hosts and answers 404 for unknown ones, CSM updates ``params`` only. So the
  modules compute the complete wanted triple and ``PUT`` it, which means the same on both.
* Reads and writes cost one request whatever the node count: a ``PUT`` carries every host
  that gets the same triple, and a read names the hosts in the query when they fit in a URL,
  else in the JSON body of the ``GET`` (BSS filters on a BootParams body as it does on the
  query). Entries are filtered here as well, so a proxy that dropped the body of a ``GET``
  would only make the reply larger, never wrong.
"""
from __future__ import annotations

from ansible_collections.hpc.vcluster.plugins.module_utils._api import decode_json
from ansible_collections.hpc.vcluster.plugins.module_utils._smd import MAX_QUERY

BOOT_FIELDS = ("kernel", "initrd", "params")


class BssClient(object):
    def __init__(self, transport, base_url):
        self.transport = transport
        self.base = base_url

    def _url(self, path="/bootparameters"):
        return self.base + path

    def bootparameters(self, hosts=None):
        """Boot parameter entries, all of them or those of ``hosts``; [] when there are none."""
        if hosts is None:
            response = self.transport.request("GET", self._url(), service="bss", expect=(200, 404))
            if response.status_code == 404:
                return []
            return decode_json(response, "bss") or []
        hosts = sorted(set(hosts))
        if not hosts:
            return []
        names = ",".join(hosts)
        if len(names) + 6 <= MAX_QUERY:
            response = self.transport.request("GET", self._url(), service="bss", params={"name": names},
                                              expect=(200, 404))
        else:
            response = self.transport.request("GET", self._url(), service="bss", json_body={"hosts": hosts},
                                              expect=(200, 404))
        if response.status_code == 404:  # the filter matched nothing
            return []
        return decode_json(response, "bss") or []

    def by_host(self, hosts=None):
        """``{xname: {kernel, initrd, params}}`` for the hosts that have boot parameters."""
        wanted = set(hosts) if hosts is not None else None
        result = {}
        for entry in self.bootparameters(hosts):
            triple = dict((field, entry.get(field) or "") for field in BOOT_FIELDS)
            for host in entry.get("hosts") or []:
                if wanted is None or host in wanted:
                    result[host] = dict(triple)
        return result

    def put(self, hosts, kernel=None, initrd=None, params=None):
        """Create or replace the boot parameters of ``hosts`` (one call for hosts sharing them)."""
        body = {"hosts": sorted(hosts)}
        for field, value in (("kernel", kernel), ("initrd", initrd), ("params", params)):
            if value is not None:
                body[field] = value
        self.transport.request("PUT", self._url(), service="bss", json_body=body)

    def patch(self, hosts, kernel=None, initrd=None, params=None):
        """Update fields of existing hosts (semantics differ per site kind: see the module docstring)."""
        body = {"hosts": sorted(hosts)}
        for field, value in (("kernel", kernel), ("initrd", initrd), ("params", params)):
            if value is not None:
                body[field] = value
        # the fields are set to the values given: sent twice, the same result
        self.transport.request("PATCH", self._url(), service="bss", json_body=body, idempotent=True)

    def delete(self, hosts):
        """Remove the boot parameters of ``hosts``."""
        self.transport.request("DELETE", self._url(), service="bss", json_body={"hosts": sorted(hosts)})
