"""Slingshot Fabric Manager under ``/apis/fabric-manager``: switches, ports, VLANs, port policies.

There is no public spec; shapes follow HPE's slingshot-net-operator (research-csm §10.1):
Xenon documents (``documentSelfLink``, ``documentKind``...), collections as
``documentLinks``, errors as ``{"message","statusCode","errorCode","documentKind"}``.
Every SMD node has an edge switch and an edge port derived from its xname
(inventory_data.edge_switch / edge_port) whose ``dst_port`` is ``<node>h0``.

The lab's segregation: a port's VLANs are the VLANs its port policies allow. Changing a
port's ``portPolicyLinks`` attaches the node to added VLANs and detaches it from removed
ones through the node driver (in a worker thread; the reply waits for it, so a client
sees the network as the reply describes it). Deleting a VLAN detaches its nodes and
removes the network.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from flask import Blueprint

from .. import inventory_data as inv
from ..nodes.base import DriverError
from .common import ApiError, check_gateway_auth, json_body, lab, query, reply

bp = Blueprint("fabric", __name__)
KIND = "com:cray:fabric:models"


def err(status: int, message: str) -> ApiError:
    return ApiError(status, message, style="xenon")


def _bad_json(msg: str) -> ApiError:
    return err(400, f"Unparseable JSON body: {msg}")


@bp.before_request
def _auth():
    return check_gateway_auth(also_openchami=True)


def _doc(link: str, kind: str, body: dict) -> dict:
    return {**body, "documentSelfLink": link, "documentKind": f"{KIND}:{kind}", "documentVersion": 0,
            "documentUpdateTimeMicros": int(time.time() * 1e6), "documentExpirationTimeMicros": 0,
            "documentOwner": "vcluster-lab"}


def _collection(links: list[str], docs: dict[str, dict] | None = None):
    out = {"documentLinks": links, "documentCount": len(links), "queryTimeMicros": 1, "documentVersion": 0,
           "documentUpdateTimeMicros": 0, "documentExpirationTimeMicros": 0, "documentOwner": "vcluster-lab"}
    if docs is not None:
        out["documents"] = docs
    return reply(out)


def _expand() -> bool:
    q = query()
    return "expand" in q or q.get("$expand", [""])[0].lower() == "true"


# ---------------------------------------------------------------------------- topology
def _nodes() -> list[str]:
    with lab().store.read() as c:
        return [r[0] for r in c.execute("SELECT id FROM components WHERE type='Node' ORDER BY id")]


def _ports() -> dict[str, str]:
    """Edge port xname -> node xname, for every SMD node."""
    out = {}
    for x in _nodes():
        p = inv.edge_port(x)
        if p:
            out[p] = x
    return out


def _port_owner(port: str) -> str | None:
    """The node behind one edge port: its xname worked out from the port name and checked in SMD
    (one row), so a PATCH costs the same at 10,000 nodes as at 4; the full scan only when that misses."""
    guess = inv.port_node_guess(port)
    if guess and inv.edge_port(guess) == port:
        with lab().store.read() as c:
            if c.execute("SELECT 1 FROM components WHERE id=? AND type='Node'", (guess,)).fetchone():
                return guess
    return _ports().get(port)


def _port_doc(port: str, node: str, state: dict | None = None) -> dict:
    grp, swc, num = inv.port_numbers(node)
    if state is None:
        state = lab().store.doc_get("fm.port", port) or {}
    return _doc(f"/fabric/ports/{port}", "Port", {
        "id": port, "switchLink": f"/fabric/switches/{inv.edge_switch(node)}", "portNumber": num,
        "conn_port": port, "dst_port": f"{node}h0", "edgePortDFA": inv.edge_port_dfa(node),
        "portPolicyLinks": state.get("portPolicyLinks", [])})


def _switches() -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for port, node in _ports().items():
        out.setdefault(inv.edge_switch(node), []).append((port, node))
    return out


def _switch_doc(sw: str, ports: list[tuple[str, str]]) -> dict:
    grp, swc, _ = inv.port_numbers(ports[0][1])
    edge = [{"portNum": inv.port_numbers(n)[2], "conn_port": p} for p, n in sorted(ports)]
    return _doc(f"/fabric/switches/{sw}", "Switch", {
        "id": sw, "grpId": grp, "swcNum": swc, "edgePorts": edge, "fabricPorts": [],
        "edgePortLinks": [f"/fabric/ports/{p}" for p, _ in sorted(ports)], "fabricPortLinks": []})


@bp.get("/fabric/switches")
def switches_get():
    sws = _switches()
    links = [f"/fabric/switches/{s}" for s in sorted(sws)]
    docs = {f"/fabric/switches/{s}": _switch_doc(s, p) for s, p in sws.items()} if _expand() else None
    return _collection(links, docs)


@bp.get("/fabric/switches/<sw>")
def switch_get(sw: str):
    ports = _switches().get(sw)
    if not ports:
        raise err(404, f"Service not found: /fabric/switches/{sw}")
    return reply(_switch_doc(sw, ports))


@bp.get("/fabric/ports")
def ports_get():
    ports = _ports()
    links = [f"/fabric/ports/{p}" for p in sorted(ports)]
    docs = None
    if _expand():
        states = lab().store.doc_get_many("fm.port", list(ports))
        docs = {f"/fabric/ports/{p}": _port_doc(p, n, states.get(p) or {}) for p, n in ports.items()}
    return _collection(links, docs)


@bp.get("/fabric/ports/<port>")
def port_get(port: str):
    node = _port_owner(port)
    if node is None:
        raise err(404, f"Service not found: /fabric/ports/{port}")
    return reply(_port_doc(port, node))


def vlans_of_policies(links: list[str]) -> set[int]:
    vlans: set[int] = set()
    for link in links:
        pol = lab().store.doc_get("fm.policy", link.rsplit("/", 1)[-1])
        if not pol:
            continue
        for v in pol.get("allowedVlans", []):
            vid = int(str(v).rsplit("/", 1)[-1])
            if lab().store.doc_get("fm.vlan", str(vid)) is not None:
                vlans.add(vid)
    return vlans


def _apply(changes: list[tuple[str, int, str]]) -> None:
    """Run driver VLAN changes ('attach'|'detach'|'delete', vlan, node) in a worker; wait for it."""
    if not changes:
        return

    def work():
        drv = lab_obj.driver
        for op, vid, node in changes:
            if op == "attach":
                drv.vlan_attach(vid, [node])
            elif op == "detach":
                drv.vlan_detach(vid, [node])
            else:
                drv.vlan_delete(vid)
    lab_obj = lab()
    try:
        lab_obj.fabric_pool.submit(work).result(timeout=300)
    except DriverError as exc:
        raise err(500, f"switch configuration failed: {exc}") from None


@bp.patch("/fabric/ports/<port>")
def port_patch(port: str):
    node = _port_owner(port)
    if node is None:
        raise err(404, f"Service not found: /fabric/ports/{port}")
    data = json_body(_bad_json)
    if not isinstance(data, dict):
        raise err(400, "body must be a JSON object")
    state = lab().store.doc_get("fm.port", port) or {"portPolicyLinks": []}
    if "portPolicyLinks" in data:
        links = data["portPolicyLinks"]
        if not isinstance(links, list):
            raise err(400, "portPolicyLinks must be a list")
        for link in links:
            if lab().store.doc_get("fm.policy", str(link).rsplit("/", 1)[-1]) is None:
                raise err(400, f"port policy {link} does not exist")
        before = vlans_of_policies(state["portPolicyLinks"])
        after = vlans_of_policies(links)
        _apply([("detach", v, node) for v in sorted(before - after)] +
               [("attach", v, node) for v in sorted(after - before)])
        state["portPolicyLinks"] = [str(link) for link in links]
    lab().store.doc_put("fm.port", port, state)
    return reply(_port_doc(port, node))


# ---------------------------------------------------------------------------- VLANs
def _vlan_doc(v: dict) -> dict:
    return _doc(f"/fabric/vlans/{v['id']}", "Vlan", v)


@bp.get("/fabric/vlans")
def vlans_get():
    vlans = sorted(lab().store.doc_list("fm.vlan"), key=lambda v: v["id"])
    links = [f"/fabric/vlans/{v['id']}" for v in vlans]
    return _collection(links, {f"/fabric/vlans/{v['id']}": _vlan_doc(v) for v in vlans} if _expand() else None)


@bp.post("/fabric/vlans")
def vlans_post():
    data = json_body(_bad_json)
    if not isinstance(data, dict):
        raise err(400, "body must be a JSON object")
    try:
        vid = int(data.get("id"))
    except (TypeError, ValueError):
        raise err(400, "VLAN id must be an integer") from None
    if not 1 <= vid <= 4094:
        raise err(400, f"VLAN id {vid} out of range 1-4094")
    v = {"id": vid, "name": str(data.get("name") or f"vlan{vid}"), "status": str(data.get("status") or "ONLINE")}
    if not lab().store.doc_insert("fm.vlan", str(vid), v):
        raise err(409, f"Service already started: /fabric/vlans/{vid}")
    return reply(_vlan_doc(v))


@bp.get("/fabric/vlans/<int:vid>")
def vlan_get(vid: int):
    v = lab().store.doc_get("fm.vlan", str(vid))
    if v is None:
        raise err(404, f"Service not found: /fabric/vlans/{vid}")
    return reply(_vlan_doc(v))


@bp.delete("/fabric/vlans/<int:vid>")
def vlan_delete(vid: int):
    v = lab().store.doc_get("fm.vlan", str(vid))
    if v is None:
        raise err(404, f"Service not found: /fabric/vlans/{vid}")
    ports = _ports()
    states = lab().store.doc_get_many("fm.port", list(ports))
    nodes = [n for p, n in ports.items()
             if p in states and vid in vlans_of_policies(states[p].get("portPolicyLinks", []))]
    _apply([("detach", vid, n) for n in nodes] + [("delete", vid, "")])
    lab().store.doc_delete("fm.vlan", str(vid))
    return reply(_vlan_doc(v))


# ---------------------------------------------------------------------------- port policies
def _policy_doc(p: dict) -> dict:
    return _doc(f"/fabric/port-policies/{p['name']}", "PortPolicy",
                {k: v for k, v in p.items() if k != "name"})


@bp.get("/fabric/port-policies")
def policies_get():
    pols = lab().store.doc_list("fm.policy")
    links = [f"/fabric/port-policies/{p['name']}" for p in pols]
    return _collection(links, {f"/fabric/port-policies/{p['name']}": _policy_doc(p) for p in pols}
                       if _expand() else None)


@bp.post("/fabric/port-policies")
def policies_post():
    data = json_body(_bad_json)
    if not isinstance(data, dict):
        raise err(400, "body must be a JSON object")
    name = str(data.get("documentSelfLink") or "").rsplit("/", 1)[-1]
    if not name:
        raise err(400, "documentSelfLink (the policy name) is required")
    allowed = data.get("allowedVlans") or []
    if not isinstance(allowed, list):
        raise err(400, "allowedVlans must be a list of /fabric/vlans/<id> links")
    for link in allowed + ([data["nativeVlanId"]] if data.get("nativeVlanId") else []):
        vid = str(link).rsplit("/", 1)[-1]
        if not vid.isdigit() or lab().store.doc_get("fm.vlan", vid) is None:
            raise err(400, f"VLAN {link} does not exist")
    pol = {k: v for k, v in data.items() if k != "documentSelfLink"}
    pol.update({"name": name, "allowedVlans": [str(a) for a in allowed]})
    if not lab().store.doc_insert("fm.policy", name, pol):
        raise err(409, f"Service already started: /fabric/port-policies/{name}")
    return reply(_policy_doc(pol))


@bp.get("/fabric/port-policies/<name>")
def policy_get(name: str):
    p = lab().store.doc_get("fm.policy", name)
    if p is None:
        raise err(404, f"Service not found: /fabric/port-policies/{name}")
    return reply(_policy_doc(p))


@bp.delete("/fabric/port-policies/<name>")
def policy_delete(name: str):
    p = lab().store.doc_get("fm.policy", name)
    if p is None:
        raise err(404, f"Service not found: /fabric/port-policies/{name}")
    link = f"/fabric/port-policies/{name}"
    changes = []
    ports = _ports()
    states = lab().store.doc_get_many("fm.port", list(ports))
    for port, node in ports.items():
        state = states.get(port)
        if not state or link not in state.get("portPolicyLinks", []):
            continue
        before = vlans_of_policies(state["portPolicyLinks"])
        state["portPolicyLinks"] = [x for x in state["portPolicyLinks"] if x != link]
        after = vlans_of_policies(state["portPolicyLinks"])
        changes += [("detach", v, node) for v in sorted(before - after)]
        lab().store.doc_put("fm.port", port, state)
    _apply(changes)
    lab().store.doc_delete("fm.policy", name)
    return reply(_policy_doc(p))
