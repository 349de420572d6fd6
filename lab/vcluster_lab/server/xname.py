"""HMS xnames: normalisation, validation and the component type each one names.

SMD derives a component's ``Type`` from its xname and rejects what is not a valid HMS
xname (``x1000c0s0b0n0`` yes, ``nid000001`` no), so the lab does the same. The table
covers the component types an HPC site actually registers; it is not the whole of
hms-xname.
"""
from __future__ import annotations

import re

# (type, pattern without anchors), most specific first where prefixes overlap.
_TYPES: list[tuple[str, str]] = [
    ("CDUMgmtSwitch", r"d\d+w\d+"),
    ("CDU", r"d\d+"),
    ("CabinetPDUPowerConnector", r"x\d+m\d+p\d+v\d+"),
    ("CabinetPDUOutlet", r"x\d+m\d+p\d+j\d+"),
    ("CabinetPDU", r"x\d+m\d+p\d+"),
    ("CabinetPDUController", r"x\d+m\d+"),
    ("CabinetCDU", r"x\d+d\d+"),
    ("CabinetBMC", r"x\d+b\d+"),
    ("CEC", r"x\d+e\d+"),
    ("Drive", r"x\d+c\d+s\d+b\d+n\d+g\d+k\d+"),
    ("StorageGroup", r"x\d+c\d+s\d+b\d+n\d+g\d+"),
    ("VirtualNode", r"x\d+c\d+s\d+b\d+n\d+v\d+"),
    ("Processor", r"x\d+c\d+s\d+b\d+n\d+p\d+"),
    ("NodeNIC", r"x\d+c\d+s\d+b\d+n\d+i\d+"),
    ("NodeHsnNic", r"x\d+c\d+s\d+b\d+n\d+h\d+"),
    ("Memory", r"x\d+c\d+s\d+b\d+n\d+d\d+"),
    ("NodeAccel", r"x\d+c\d+s\d+b\d+n\d+a\d+"),
    ("NodeAccelRiser", r"x\d+c\d+s\d+b\d+n\d+r\d+"),
    ("Node", r"x\d+c\d+s\d+b\d+n\d+"),
    ("NodeFpga", r"x\d+c\d+s\d+b\d+f\d+"),
    ("NodeBMCNic", r"x\d+c\d+s\d+b\d+i\d+"),
    ("NodeBMC", r"x\d+c\d+s\d+b\d+"),
    ("NodeEnclosurePowerSupply", r"x\d+c\d+s\d+e\d+t\d+"),
    ("NodeEnclosure", r"x\d+c\d+s\d+e\d+"),
    ("NodePowerConnector", r"x\d+c\d+s\d+[jv]\d+"),
    ("ComputeModule", r"x\d+c\d+s\d+"),
    ("HSNLink", r"x\d+c\d+r\d+a\d+l\d+"),
    ("HSNAsic", r"x\d+c\d+r\d+a\d+"),
    ("RouterTORFpga", r"x\d+c\d+r\d+t\d+f\d+"),
    ("RouterFpga", r"x\d+c\d+r\d+f\d+"),
    ("RouterBMCNic", r"x\d+c\d+r\d+b\d+i\d+"),
    ("RouterBMC", r"x\d+c\d+r\d+b\d+"),
    ("HSNBoard", r"x\d+c\d+r\d+e\d+"),
    ("HSNConnectorPort", r"x\d+c\d+r\d+j\d+p\d+"),
    ("HSNConnector", r"x\d+c\d+r\d+j\d+"),
    ("RouterModule", r"x\d+c\d+r\d+"),
    ("MgmtSwitchConnector", r"x\d+c\d+w\d+j\d+"),
    ("MgmtSwitch", r"x\d+c\d+w\d+"),
    ("MgmtHLSwitch", r"x\d+c\d+h\d+s\d+"),
    ("MgmtHLSwitchEnclosure", r"x\d+c\d+h\d+"),
    ("CMMRectifier", r"x\d+c\d+t\d+"),
    ("CMMFpga", r"x\d+c\d+f\d+"),
    ("ChassisBMC", r"x\d+c\d+b\d+"),
    ("Chassis", r"x\d+c\d+"),
    ("Cabinet", r"x\d+"),
    ("System", r"s0"),
    ("Partition", r"p\d+(?:\.\d+)?"),
]
_COMPILED = [(t, re.compile(p + r"\Z")) for t, p in _TYPES]
_LEADING_ZEROS = re.compile(r"([a-z])0+(\d)")

# The type names SMD lists at /service/values/type (hms-base HMSType list).
HMS_TYPES = [
    "CDU", "CabinetCDU", "CabinetPDU", "CabinetPDUOutlet", "CabinetPDUPowerConnector",
    "CabinetPDUController", "Cabinet", "Chassis", "ChassisBMC", "CMMRectifier", "CMMFpga",
    "CEC", "ComputeModule", "RouterModule", "NodeBMC", "NodeEnclosure",
    "NodeEnclosurePowerSupply", "HSNBoard", "MgmtSwitch", "MgmtHLSwitch", "CDUMgmtSwitch",
    "Node", "VirtualNode", "Processor", "Drive", "StorageGroup", "NodeNIC", "Memory",
    "NodeAccel", "NodeAccelRiser", "NodeFpga", "HSNAsic", "RouterFpga", "RouterBMC",
    "HSNLink", "HSNConnector", "INVALID",
]


def normalize(xname: str) -> str:
    """Lower-case and drop leading zeros (``X1000C0S01B0N0`` -> ``x1000c0s1b0n0``), as SMD does."""
    return _LEADING_ZEROS.sub(r"\1\2", (xname or "").strip().lower())


def xname_type(xname: str) -> str | None:
    """The HMS type an (already normalised) xname names, or None when it is not an xname."""
    for name, rx in _COMPILED:
        if rx.match(xname):
            return name
    return None


def is_valid(xname: str) -> bool:
    t = xname_type(normalize(xname))
    return t is not None and t not in ("Partition",)


def is_node(xname: str) -> bool:
    return xname_type(normalize(xname)) == "Node"


def is_descendant(child: str, parent: str) -> bool:
    """Whether ``child`` lies under (or is) ``parent`` in the xname hierarchy (``x1c0s1`` holds ``x1c0s1b0n0``, not ``x1c0s10b0n0``)."""
    if parent in ("all", "s0"):
        return True
    if not child.startswith(parent):
        return False
    rest = child[len(parent):]
    return rest == "" or rest[0].isalpha()


_NODE = re.compile(r"x(\d+)c(\d+)s(\d+)b(\d+)n(\d+)\Z")


def node_parts(xname: str) -> tuple[int, int, int, int, int] | None:
    """(cabinet, chassis, slot, bmc, node) of a node xname."""
    m = _NODE.match(normalize(xname))
    return tuple(int(g) for g in m.groups()) if m else None  # type: ignore[return-value]
