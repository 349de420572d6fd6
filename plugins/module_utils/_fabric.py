# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for the Slingshot Fabric Manager (``/apis/fabric-manager``): VLANs, port policies, edge ports.

There is no public spec; the shapes are those HPE's slingshot-net-operator uses
(research-csm.md §10.1): Xenon documents (``documentSelfLink``...), collections as
``documentLinks`` (with ``documents`` when ``?expand`` is given), errors as
``{"message", "statusCode", ...}``. A node's edge port is the port whose ``dst_port``
is the node's xname plus a 2-character NIC suffix (``x1000c0s0b0n0h0``). A VLAN reaches a
port through a port policy (``allowedVlans``, ``nativeVlanId``) linked from the port's
``portPolicyLinks``.

Reads are bulk (every port in one ``?expand`` call), but a port's policies change only
with a ``PATCH`` of that port: no public contract of the fabric manager (HPE's operator,
SAT's switch and cable swaps) shows a call that changes many ports, so ``patch_ports``
sends one per port, a few at a time, which keeps the wall time down, not the count.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.hpc.vcluster.plugins.module_utils._api import decode_json

# PATCHes in flight at once: the session's connection pool holds ten per host.
PATCH_WORKERS = 8


def link_name(link):
    return str(link).rstrip("/").rsplit("/", 1)[-1]


def port_node(port):
    """The node xname a port faces (``dst_port`` minus its 2-character NIC suffix), or None."""
    dst = (port or {}).get("dst_port") or ""
    return dst[:-2] if len(dst) > 2 else None


def policy_link(label):
    """The link a port carries to be on ``label``'s segment: its port policy (one per vCluster)."""
    return "/fabric/port-policies/%s" % label


def nodes_on_policy(ports, link):
    """The nodes whose edge port carries the port policy ``link`` (``ports``: edge_ports()), sorted."""
    return sorted(node for node, port in ports.items() if link in (port.get("portPolicyLinks") or []))


class FabricClient(object):
    def __init__(self, transport, base_url):
        self.transport = transport
        self.base = base_url + "/fabric"

    def _get(self, path, missing_ok=False, params=None):
        response = self.transport.request("GET", self.base + path, service="fabric", params=params,
                                          expect=(200, 404) if missing_ok else None)
        if missing_ok and response.status_code == 404:
            return None
        return decode_json(response, "fabric")

    def _send(self, method, path, body=None, expect=None, idempotent=None, read_back=None):
        return decode_json(self.transport.request(method, self.base + path, service="fabric", json_body=body,
                                                  expect=expect, idempotent=idempotent, read_back=read_back), "fabric")

    # -- VLANs ---------------------------------------------------------------------------
    def vlan(self, vlan_id):
        return self._get("/vlans/%d" % int(vlan_id), missing_ok=True)

    def create_vlan(self, vlan_id, name):
        return self._send("POST", "/vlans", {"id": int(vlan_id), "name": name, "status": "ONLINE"},
                          read_back=lambda: self.vlan(vlan_id))

    def delete_vlan(self, vlan_id):
        self.transport.request("DELETE", self.base + "/vlans/%d" % int(vlan_id), service="fabric", expect=(200, 204, 404))

    # -- port policies -------------------------------------------------------------------
    def policy(self, name):
        return self._get("/port-policies/%s" % name, missing_ok=True)

    def create_policy(self, name, vlan_id, native=True):
        link = "/fabric/vlans/%d" % int(vlan_id)
        body = {"documentSelfLink": name, "allowedVlans": [link], "isUntaggedAllowed": bool(native)}
        if native:
            body["nativeVlanId"] = link
        return self._send("POST", "/port-policies", body, read_back=lambda: self.policy(name))

    def delete_policy(self, name):
        self.transport.request("DELETE", self.base + "/port-policies/%s" % name, service="fabric",
                               expect=(200, 204, 404))

    # -- ports -------------------------------------------------------------------------------
    def ports(self):
        """Every port document: one expanded call where the fabric manager has it, else one per port."""
        body = self._get("/ports", params={"expand": "true"}) or {}
        docs = body.get("documents")
        if isinstance(docs, dict) and docs:
            return [dict(doc, documentSelfLink=doc.get("documentSelfLink") or link) for link, doc in docs.items()]
        out = []
        for link in body.get("documentLinks") or []:
            doc = self._get("/ports/%s" % link_name(link))
            if doc:
                out.append(dict(doc, documentSelfLink=doc.get("documentSelfLink") or link))
        return out

    def edge_ports(self, xnames=None):
        """``{node xname: port document}`` for the nodes' edge ports (all nodes when None)."""
        wanted = set(xnames) if xnames is not None else None
        result = {}
        for port in self.ports():
            node = port_node(port)
            if node and (wanted is None or node in wanted):
                result[node] = port
        return result

    def set_port_policies(self, port_link, links):
        # the port's whole list of policies is set: sent twice, the same result
        return self._send("PATCH", "/ports/%s" % link_name(port_link), {"portPolicyLinks": list(links)}, idempotent=True)

    def patch_ports(self, changes):
        """Set ``portPolicyLinks`` of many ports, ``[(port link, links)]``: every PATCH is sent even when one
        fails (the ports are independent), then the first error is raised, saying how many failed."""
        changes = list(changes)
        if len(changes) <= 1:
            for link, links in changes:
                self.set_port_policies(link, links)
            return
        with ThreadPoolExecutor(max_workers=min(PATCH_WORKERS, len(changes))) as pool:
            futures = [pool.submit(self.set_port_policies, link, links) for link, links in changes]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            if len(errors) > 1:
                errors[0].args = ("%s (and %d more ports failed)" % (errors[0], len(errors) - 1),)
            raise errors[0]
