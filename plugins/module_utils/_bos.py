# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for BOS v2, CSM's Boot Orchestration Service (``/apis/bos/v2``).

Contract notes (research-csm.md §3, §11): a session template ``PUT`` answers **200** with
the stored template; BOS overwrites ``name`` with the path, strips boot-set ``name``s and
sets ``tenant`` from the ``Cray-Tenant-Name`` header, and rejects unknown fields. A session
``POST`` answers 201; its ``status.status`` goes pending -> running -> complete, and the
extended status (``/sessions/{id}/status``) has the per-phase percentages and errors.
"""
from __future__ import annotations

from ansible_collections.hpc.vcluster.plugins.module_utils._api import decode_json
from ansible_collections.hpc.vcluster.plugins.module_utils._wait import wait_for

SESSION_OPERATIONS = ("boot", "reboot", "shutdown")
# Fields of a template that the server owns or rewrites: never compared.
SERVER_FIELDS = ("name", "tenant", "links")


class BosClient(object):
    def __init__(self, transport, base_url, tenant=None):
        self.transport = transport
        self.base = base_url
        self.tenant = tenant

    def _headers(self):
        return {"Cray-Tenant-Name": self.tenant} if self.tenant else None

    def _get(self, path, missing_ok=False):
        response = self.transport.request("GET", self.base + path, service="bos", headers=self._headers(),
                                          expect=(200, 404) if missing_ok else None)
        if missing_ok and response.status_code == 404:
            return None
        return decode_json(response, "bos")

    # -- session templates -------------------------------------------------------------
    def templates(self):
        return self._get("/sessiontemplates") or []

    def template(self, name):
        return self._get("/sessiontemplates/%s" % name, missing_ok=True)

    def put_template(self, name, template):
        body = dict((k, v) for k, v in template.items() if k not in SERVER_FIELDS)
        response = self.transport.request("PUT", self.base + "/sessiontemplates/%s" % name, service="bos",
                                          json_body=body, headers=self._headers())
        return decode_json(response, "bos")

    def delete_template(self, name):
        self.transport.request("DELETE", self.base + "/sessiontemplates/%s" % name, service="bos",
                               headers=self._headers(), expect=(200, 204, 404))

    # -- sessions ------------------------------------------------------------------------
    def create_session(self, template_name, operation, limit=None, name=None, stage=False, include_disabled=False):
        if operation not in SESSION_OPERATIONS:
            raise ValueError("unknown BOS operation %r" % operation)
        body = {"template_name": template_name, "operation": operation, "stage": bool(stage),
                "include_disabled": bool(include_disabled)}
        if limit:
            body["limit"] = limit
        if name:
            body["name"] = name
        response = self.transport.request("POST", self.base + "/sessions", service="bos", json_body=body,
                                          headers=self._headers())
        return decode_json(response, "bos") or {}

    def session(self, name):
        return self._get("/sessions/%s" % name, missing_ok=True)

    def session_status(self, name):
        return self._get("/sessions/%s/status" % name, missing_ok=True) or {}

    def delete_session(self, name):
        self.transport.request("DELETE", self.base + "/sessions/%s" % name, service="bos",
                               headers=self._headers(), expect=(200, 204, 404))

    def wait_session(self, name, timeout, interval=5.0, **kwargs):
        """Poll the session until its status is ``complete``; returns the session."""
        return wait_for(lambda: self.session(name) or {},
                        lambda s: ((s.get("status") or {}).get("status") == "complete"),
                        timeout=timeout, interval=interval, what="BOS session %s" % name, **kwargs)


def comparable_template(template):
    """A template with the server-owned fields and boot-set names removed, for comparison."""
    result = {}
    for key, value in (template or {}).items():
        if key in SERVER_FIELDS:
            continue
        if key == "boot_sets":
            value = dict((bs_name, dict((k, v) for k, v in (bs or {}).items() if k != "name"))
                         for bs_name, bs in (value or {}).items())
        result[key] = value
    return result
