# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for SMD (the Hardware State Manager, HSM v2): components, labels (groups), partitions.

The same contract on OpenCHAMI (``/hsm/v2``) and CSM (``/apis/smd/hsm/v2``) with one
difference that matters: only OpenCHAMI's SMD can replace a group's member list in one
call (``PUT /groups/{label}/members``); Cray's adds and removes one xname per call.
``set_members`` hides that. Every read is one bulk call whatever the node count: lists of
xnames or NIDs go in the body of SMD's POST query forms (``/State/Components/Query``,
``/State/Components/ByNID/Query``, made for exactly that: "there are limits to the length
of an HTTP URL"), and where SMD only has a GET (``/memberships``) a list that would not
fit in a URL asks for the whole collection and filters it here.
"""
from __future__ import annotations

import re

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, decode_json

# What SMD accepts as a label after lower-casing it; vCluster labels are stricter
# (``[a-z][a-z0-9_]*``) so that CSM's CFS inventory and Ansible keep them.
SMD_LABEL_RE = re.compile(r"^[-a-z0-9:._]+$")
VCLUSTER_LABEL_RE = re.compile(r"^[a-z][a-z0-9_]*$")
XNAME_NODE_RE = re.compile(r"^x\d+c\d+s\d+b\d+n\d+$")

# The longest query string the clients put in a URL. The gateways in front of the services
# refuse long request lines (nginx's buffer is 8 KiB; HAProxy's whole request head, a JWT
# included, 16 KiB); longer lists go in a body or become one unfiltered call.
MAX_QUERY = 4096

COMPONENT_FILTERS = ("id", "type", "state", "flag", "role", "subrole", "enabled", "softwarestatus", "subtype",
                     "arch", "class", "nid", "nid_start", "nid_end", "group", "partition")


def query_length(params):
    """About how long ``params`` make a URL's query string (percent-encoding aside)."""
    return sum(len(str(k)) + len(str(v)) + 2 for k, v in params)


def nid_ranges(nids):
    """``[1, 2, 3, 7]`` -> ``["1-3", "7"]``: SMD's NIDRanges, short whatever the count."""
    runs = []
    for nid in sorted(set(int(n) for n in nids)):
        if runs and nid == runs[-1][1] + 1:
            runs[-1][1] = nid
        else:
            runs.append([nid, nid])
    return [str(low) if low == high else "%d-%d" % (low, high) for low, high in runs]


def _params(filters):
    """Query parameters from filters: lists become repeated keys (OR), None is dropped."""
    params = []
    for key in sorted(filters):
        value = filters[key]
        if value is None or value == []:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, bool):
                item = "true" if item else "false"
            params.append((key, str(item)))
    return params


class SmdClient(object):
    def __init__(self, transport, base_url, put_members=True):
        self.transport = transport
        self.base = base_url
        self.put_members = put_members

    def _get(self, path, params=None, missing_ok=False):
        expect = (200, 404) if missing_ok else None
        response = self.transport.request("GET", self.base + path, service="smd", params=params, expect=expect)
        if missing_ok and response.status_code == 404:
            return None
        return decode_json(response, "smd")

    # -- components ----------------------------------------------------------------
    def components(self, **filters):
        """Components matching SMD's server-side filters (lists = OR within a key, AND across keys)."""
        unknown = set(filters) - set(COMPONENT_FILTERS)
        if unknown:
            raise ValueError("unknown component filters: %s" % ", ".join(sorted(unknown)))
        body = self._get("/State/Components", _params(filters)) or {}
        return body.get("Components") or []

    def component(self, xname):
        return self._get("/State/Components/%s" % xname, missing_ok=True)

    def components_by_ids(self, xnames, **filters):
        """The components among ``xnames`` (and matching the filters): one ``POST /State/Components/Query``."""
        unknown = set(filters) - set(COMPONENT_FILTERS) - {"id"}
        if unknown:
            raise ValueError("unknown component filters: %s" % ", ".join(sorted(unknown)))
        xnames = sorted(set(xnames))
        if not xnames:
            return []
        body = {"ComponentIDs": xnames}
        for key, value in filters.items():
            if value is None or value == []:
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            if key in ("group", "partition"):  # one value each in the query body
                body[key] = str(values[0])
            else:
                body[key] = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]
        reply = decode_json(self.transport.request("POST", self.base + "/State/Components/Query", service="smd",
                                                   json_body=body, idempotent=True), "smd") or {}
        return reply.get("Components") or []

    def components_by_nids(self, nids):
        """The components holding these NIDs: one ``POST /State/Components/ByNID/Query`` with NID ranges."""
        ranges = nid_ranges(nids)
        if not ranges:
            return []
        reply = decode_json(self.transport.request("POST", self.base + "/State/Components/ByNID/Query", service="smd",
                                                   json_body={"NIDRanges": ranges}, idempotent=True), "smd") or {}
        return reply.get("Components") or []

    def memberships(self, **filters):
        """Group labels and partition of every component, in one call."""
        return self._get("/memberships", _params(filters)) or []

    def memberships_of(self, xnames):
        """``/memberships`` entries of ``xnames``, in one call: filtered by id when the list fits in a URL,
        else every node's (SMD has no POST form of it) and filtered here."""
        xnames = sorted(set(xnames))
        if not xnames:
            return []
        params = [("id", x) for x in xnames]
        if query_length(params) > MAX_QUERY:
            wanted = set(xnames)
            return [m for m in self.memberships(type="Node") if m.get("id") in wanted]
        return self._get("/memberships", params) or []

    def ethernet_interfaces(self, **filters):
        return self._get("/Inventory/EthernetInterfaces", _params(filters)) or []

    # -- labels (groups) -----------------------------------------------------------
    def groups(self, labels=None, tag=None):
        params = _params({"group": labels, "tag": tag})
        if labels and query_length(params) > MAX_QUERY:  # so many labels: all groups, filtered here
            wanted = set(labels)
            return [g for g in self._get("/groups", _params({"tag": tag})) or [] if g.get("label") in wanted]
        return self._get("/groups", params) or []

    def group(self, label):
        return self._get("/groups/%s" % label, missing_ok=True)

    def labels(self):
        return self._get("/groups/labels") or []

    def create_group(self, label, description="", tags=None, exclusive_group=None, members=None):
        body = {"label": label, "description": description or "", "members": {"ids": sorted(members or [])}}
        if tags:
            body["tags"] = list(tags)
        if exclusive_group:
            body["exclusiveGroup"] = exclusive_group
        # a lost reply (500) is read back: the group there means the POST took effect, absent means send it again
        self.transport.request("POST", self.base + "/groups", service="smd", json_body=body,
                               read_back=lambda: self.group(label))

    def update_group(self, label, description=None, tags=None):
        body = {}
        if description is not None:
            body["description"] = description
        if tags is not None:
            body["tags"] = list(tags)
        if body:
            self.transport.request("PATCH", self.base + "/groups/%s" % label, service="smd", json_body=body)

    def delete_group(self, label):
        self.transport.request("DELETE", self.base + "/groups/%s" % label, service="smd")

    def add_member(self, label, xname):
        def member():
            group = self.group(label)
            return True if group and xname in ((group.get("members") or {}).get("ids") or []) else None
        self.transport.request("POST", self.base + "/groups/%s/members" % label, service="smd", json_body={"id": xname},
                               read_back=member)

    def remove_member(self, label, xname):
        self.transport.request("DELETE", self.base + "/groups/%s/members/%s" % (label, xname), service="smd")

    def set_members(self, label, wanted, current):
        """Make the label's members exactly ``wanted``; returns (added, removed).

        One PUT where the SMD has it (OpenCHAMI), else one call per change (CSM), adding
        before removing so that a failure half-way never leaves the label emptier than asked.
        """
        wanted, current = set(wanted), set(current)
        added, removed = sorted(wanted - current), sorted(current - wanted)
        if not added and not removed:
            return added, removed
        if self.put_members:
            try:
                self.transport.request("PUT", self.base + "/groups/%s/members" % label, service="smd",
                                       json_body={"group": label, "ids": sorted(wanted)})
                return added, removed
            except ApiError as exc:
                if exc.status != 405:
                    raise
                self.put_members = False  # an SMD without bulk member updates
        for xname in added:
            self.add_member(label, xname)
        for xname in removed:
            self.remove_member(label, xname)
        return added, removed

    # -- partitions ------------------------------------------------------------------
    def partitions(self):
        return self._get("/partitions") or []
