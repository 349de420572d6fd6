"""The ``records`` node driver: nodes without containers, for scale tests and ``seed``.

Power state, the image a node booted and its VLANs are remembered in the lab store (so
they survive a server restart) and nothing runs. ``build_image`` does not build anything:
it returns a BuiltImage whose digest is a hash of the recipe and whose labels carry the
same provenance keys the podman driver writes, marked ``io.vcluster.image.records-only``.
This is the only driver allowed to do that; use the podman driver whenever a test needs
a node that really boots.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import threading

from ..inventory_data import DEFAULT_IMAGE
from ..store import Store
from .base import BuiltImage, DriverError, NodeSpec

KIND = "records.node"
IMAGES = "records.image"


class RecordsDriver:
    name = "records"

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        if not self.store.doc_get(IMAGES, DEFAULT_IMAGE):
            self.store.doc_put(IMAGES, DEFAULT_IMAGE, {"ref": DEFAULT_IMAGE, "digest": _digest(DEFAULT_IMAGE)})

    # ------------------------------------------------------------ state helpers
    def _node(self, xname: str) -> dict | None:
        return self.store.doc_get(KIND, xname)

    def _save(self, xname: str, node: dict) -> None:
        self.store.doc_put(KIND, xname, node)

    def adopt(self, states: dict[str, str]) -> None:
        """Remember nodes that exist only as records (``seed``) with their power state."""
        with self.store.write() as c:
            c.executemany(
                "INSERT INTO docs(kind, id, data, created) VALUES(?, ?, ?, 0) "
                "ON CONFLICT(kind, id) DO UPDATE SET data=excluded.data",
                [(KIND, x, json.dumps({"xname": x, "power": p, "image": "", "vlans": [], "boots": 0}))
                 for x, p in states.items()])

    def forget(self, xnames: list[str]) -> None:
        with self.store.write() as c:
            c.executemany("DELETE FROM docs WHERE kind=? AND id=?", [(KIND, x) for x in xnames])

    def vlan_membership(self) -> dict[str, list[int]]:
        return {x["xname"]: x["vlans"] for x in self.store.doc_list(KIND) if x.get("vlans")}

    def node_image(self, xname: str) -> str:
        node = self._node(xname)
        return node["image"] if node else ""

    # ------------------------------------------------------------ NodeDriver
    def power_on(self, node: NodeSpec, image: str) -> None:
        with self._lock:
            cur = self._node(node.xname) or {"xname": node.xname, "vlans": [], "boots": 0}
            if cur.get("power") == "on" and cur.get("image") == image:
                return
            cur.update({"xname": node.xname, "power": "on", "image": image, "boots": cur.get("boots", 0) + 1})
            self._save(node.xname, cur)

    def apply_power(self, switches: dict[str, tuple[str, str]]) -> None:
        """Many nodes at once, ``{xname: ("on", image) | ("off", "")}``, in one write (a PCS transition)."""
        if not switches:
            return
        with self._lock:
            current = self.store.doc_get_many(KIND, list(switches))
            rows = []
            for x, (power, image) in switches.items():
                cur = current.get(x) or {"xname": x, "vlans": [], "boots": 0}
                cur["xname"], cur["power"] = x, power
                if power == "on":
                    cur["image"], cur["boots"] = image, cur.get("boots", 0) + 1
                rows.append((KIND, x, json.dumps(cur)))
            with self.store.write() as c:
                c.executemany("INSERT INTO docs(kind, id, data, created) VALUES(?, ?, ?, 0) "
                              "ON CONFLICT(kind, id) DO UPDATE SET data=excluded.data", rows)

    def power_off(self, xname: str, force: bool = False) -> None:
        with self._lock:
            cur = self._node(xname)
            if cur:
                cur["power"] = "off"
                self._save(xname, cur)

    def restart(self, node: NodeSpec, image: str, hard: bool = False) -> None:
        with self._lock:
            cur = self._node(node.xname) or {"xname": node.xname, "vlans": [], "boots": 0}
            cur.update({"xname": node.xname, "power": "on", "image": image, "boots": cur.get("boots", 0) + 1})
            self._save(node.xname, cur)

    def power_state(self, xnames: list[str]) -> dict[str, str]:
        # only the asked nodes' records: a PCS task asks for one node, and reading all 10,000 each time
        # made a 10,000-node transition quadratic
        known = {x: d.get("power", "off") for x, d in self.store.doc_get_many(KIND, list(xnames)).items()}
        return {x: known.get(x, "undefined") for x in xnames}

    def kill(self, xname: str) -> None:
        self.power_off(xname, force=True)

    def vlan_attach(self, vlan_id: int, xnames: list[str]) -> None:
        with self._lock:
            for x in xnames:
                cur = self._node(x) or {"xname": x, "power": "off", "image": "", "boots": 0, "vlans": []}
                if vlan_id not in cur.setdefault("vlans", []):
                    cur["xname"], cur["vlans"] = x, sorted(cur["vlans"] + [vlan_id])
                    self._save(x, cur)

    def vlan_detach(self, vlan_id: int, xnames: list[str]) -> None:
        with self._lock:
            for x in xnames:
                cur = self._node(x)
                if cur and vlan_id in cur.get("vlans", []):
                    cur["vlans"] = [v for v in cur["vlans"] if v != vlan_id]
                    self._save(x, cur)

    def vlan_delete(self, vlan_id: int) -> None:
        with self._lock:
            for cur in self.store.doc_list(KIND):
                if vlan_id in cur.get("vlans", []):
                    cur["vlans"] = [v for v in cur["vlans"] if v != vlan_id]
                    self._save(cur["xname"], cur)

    def image_exists(self, ref: str) -> bool:
        return self.store.doc_get(IMAGES, ref) is not None

    def build_image(self, recipe: dict, name: str, tag: str, builder: str) -> BuiltImage:
        if not isinstance(recipe, dict):
            raise DriverError("recipe must be a mapping (image-builder style)")
        parent = (recipe.get("options") or {}).get("parent", "scratch")
        if parent != "scratch" and not self.image_exists(parent):
            raise DriverError(f"parent image {parent} does not exist")
        ref = f"localhost/{name}:{tag}"
        recipe_sha = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
        parent_doc = self.store.doc_get(IMAGES, parent) or {}
        labels = {
            "org.openchami.image.name": name,
            "org.openchami.image.tags": tag,
            "org.openchami.image.parent": parent,
            "org.openchami.image.build-date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "io.vcluster.image.recipe-sha256": recipe_sha,
            "io.vcluster.image.parent-digest": parent_doc.get("digest", ""),
            "io.vcluster.image.builder": builder,
            "io.vcluster.image.records-only": "true",
        }
        built = BuiltImage(ref=ref, digest=_digest(ref + recipe_sha), labels=labels)
        self.store.doc_put(IMAGES, ref, {"ref": ref, "digest": built.digest, "labels": labels})
        return built

    def remove_node(self, xname: str) -> None:
        self.store.doc_delete(KIND, xname)


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
