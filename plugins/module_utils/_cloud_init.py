# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for the OpenCHAMI cloud-init server's admin API (``/cloud-init/admin/...``).

Group data is keyed by SMD label: a node gets the cloud-config of every label it is a
member of (``/vendor-data`` lists one ``#include`` per label), so data set once per label
reaches every node that later joins it. Contract notes (research-openchami.md §4): the
meta-data key is ``meta-data`` (not ``data``), ``GET /admin/groups`` is a JSON object keyed
by name, ``PUT /admin/groups/{name}`` creates or replaces (201), ``DELETE`` answers 200
even for a missing group, and errors are plain text rather than RFC 7807.
"""
from __future__ import annotations

import base64

from ansible_collections.hpc.vcluster.plugins.module_utils._api import decode_json


class CloudInitClient(object):
    def __init__(self, transport, base_url):
        self.transport = transport
        self.base = base_url

    def groups(self):
        """``{name: group data}`` of every group."""
        return self.transport.get_json(self.base + "/admin/groups", service="cloud-init") or {}

    def group(self, name):
        response = self.transport.request("GET", self.base + "/admin/groups/%s" % name, service="cloud-init",
                                          expect=(200, 404))
        if response.status_code == 404:
            return None
        return decode_json(response, "cloud-init")

    def put_group(self, name, data):
        body = dict(data)
        body["name"] = name
        self.transport.request("PUT", self.base + "/admin/groups/%s" % name, service="cloud-init", json_body=body)

    def delete_group(self, name):
        self.transport.request("DELETE", self.base + "/admin/groups/%s" % name, service="cloud-init",
                               expect=(200, 204, 404))


def group_content(group):
    """The cloud-config text of a group record, decoded when stored as base64."""
    file_ = (group or {}).get("file") or {}
    content = file_.get("content") or ""
    if file_.get("encoding") == "base64" and content:
        try:
            return base64.b64decode(content).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return content
    return content
