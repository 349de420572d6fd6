# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site DNS: PowerDNS Authoritative's HTTP API (the DNS server CSM itself runs).

A vCluster owns whole zones (its nodes' zone, and a public one if it has public
addresses), so the client works at the level the API offers: read a zone with its RRsets,
create it, PATCH RRsets (REPLACE or DELETE, one request for every change), delete it.
Names are handled in canonical form (lower case, absolute, trailing dot), as the API
returns them, so comparing desired and actual records is a plain set comparison.
"""
from __future__ import annotations

import ipaddress
import re

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, Transport, decode_json

LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
FQDN_RE = re.compile(r"^(%s\.)+$" % LABEL)
#: RRset types a vCluster's zone holds; SOA and NS at the apex belong to the zone itself.
TYPES = ("A", "AAAA", "CNAME", "TXT", "PTR", "SRV")
ZONE_OWNED = ("SOA", "NS")


class RecordError(ValueError):
    """A record the module was given is not valid; the message names it."""


def canonical(name, zone=None):
    """``nid000001`` in zone ``demo.vc.internal`` -> ``nid000001.demo.vc.internal.``; ``@`` is the apex."""
    name = (name or "").strip().lower()
    if zone is not None:
        zone = canonical(zone)
        if name in ("", "@"):
            return zone
        if not name.endswith("."):
            name = "%s.%s" % (name, zone)
    elif not name.endswith("."):
        name += "."
    return name


def check_name(name, what):
    if len(name) > 254 or not FQDN_RE.match(name):
        raise RecordError("%s %r is not a DNS name (labels of letters, digits, '-' and '_', at most 63 characters "
                          "each, 253 in all)" % (what, name[:80]))


def normalize_records(zone, records):
    """The desired RRsets, {(name, type): {"ttl": int, "records": sorted contents}}; RecordError if one is wrong."""
    zone = canonical(zone)
    check_name(zone, "zone")
    out = {}
    for index, rec in enumerate(records):
        where = "records[%d]" % index
        name = canonical(rec["name"], zone)
        check_name(name, "%s.name" % where)
        if not (name == zone or name.endswith("." + zone)):
            raise RecordError("%s.name %s is not in zone %s" % (where, name, zone))
        rtype = rec["type"].upper()
        if rtype not in TYPES:
            raise RecordError("%s.type %s is not one of %s" % (where, rtype, ", ".join(TYPES)))
        contents = rec["content"] if isinstance(rec["content"], list) else [rec["content"]]
        if not contents:
            raise RecordError("%s.content is empty" % where)
        contents = sorted(set(_content(rtype, str(c), zone, "%s.content" % where) for c in contents))
        if rtype == "CNAME" and len(contents) > 1:
            raise RecordError("%s: a CNAME has one target, not %d" % (where, len(contents)))
        key = (name, rtype)
        if key in out:
            raise RecordError("%s: %s %s is listed twice; give one entry with every content" % (where, name, rtype))
        out[key] = {"ttl": int(rec.get("ttl") or 300), "records": contents}
    names_with_cname = set(n for n, t in out if t == "CNAME")
    for name, rtype in out:
        if name in names_with_cname and rtype != "CNAME":
            raise RecordError("%s has a CNAME and a %s record; a CNAME must be the only record of its name" % (name, rtype))
    return out


def _content(rtype, value, zone, where):
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise RecordError("%s holds a control character" % where)
    if rtype == "A":
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise RecordError("%s %r is not an IPv4 address" % (where, value[:60]))
    if rtype == "AAAA":
        try:
            return str(ipaddress.IPv6Address(value))
        except ValueError:
            raise RecordError("%s %r is not an IPv6 address" % (where, value[:60]))
    if rtype in ("CNAME", "PTR"):
        target = canonical(value, None if value.endswith(".") else zone)
        check_name(target, where)
        return target
    if rtype == "TXT":
        if len(value) > 255:
            raise RecordError("%s is longer than 255 characters" % where)
        text = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
        return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')
    # SRV: priority weight port target
    parts = value.split()
    if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
        raise RecordError("%s %r must be 'priority weight port target'" % (where, value[:60]))
    target = canonical(parts[3], None if parts[3].endswith(".") else zone)
    check_name(target, where)
    return "%s %s %s %s" % (parts[0], parts[1], parts[2], target)


class PowerDnsClient(object):
    """Zones and RRsets of one PowerDNS server (``server_id``, usually ``localhost``)."""

    def __init__(self, endpoint, api_key, server_id="localhost", sleep=None):
        self.endpoint = endpoint
        self._key = {"X-API-Key": api_key}
        self.base = endpoint.url("/api/v1/servers/%s" % server_id)
        kwargs = {"sleep": sleep} if sleep else {}
        self.transport = Transport(endpoint, None, **kwargs)

    def _call(self, method, path, **kwargs):
        try:
            return self.transport.request(method, self.base + path, service="dns", headers=self._key, **kwargs)
        except ApiError as exc:
            if exc.status == 401:
                raise ApiError("DNS %s %s: 401 Unauthorized: the site DNS refused the API key (api_key, "
                               "VCLUSTER_DNS_API_KEY)" % (method, path), status=401, method=method)
            raise

    def zone(self, name):
        """The zone with its RRsets, or None."""
        reply = self._call("GET", "/zones/%s" % canonical(name), expect=(200, 404, 422))
        return decode_json(reply, "dns") if reply.status_code == 200 else None

    def create_zone(self, name, rrsets, nameservers=(), account="", kind="Native"):
        body = {"name": canonical(name), "kind": kind, "nameservers": [canonical(n) for n in nameservers],
                "account": account, "rrsets": rrsets}
        return decode_json(self._call("POST", "/zones", json_body=body, expect=(201,)), "dns")

    def patch_rrsets(self, name, rrsets):
        self._call("PATCH", "/zones/%s" % canonical(name), json_body={"rrsets": rrsets}, expect=(204, 200))

    def set_account(self, name, account):
        self._call("PUT", "/zones/%s" % canonical(name), json_body={"account": account}, expect=(204, 200))

    def delete_zone(self, name):
        self._call("DELETE", "/zones/%s" % canonical(name), expect=(204, 404))


def actual_rrsets(zone_obj):
    """{(name, type): {"ttl", "records"}} of a zone as the API returns it, enabled records only."""
    out = {}
    for rr in (zone_obj or {}).get("rrsets") or []:
        records = sorted(r["content"] for r in rr.get("records") or [] if not r.get("disabled"))
        if records:
            out[(rr["name"].lower(), rr["type"].upper())] = {"ttl": rr.get("ttl"), "records": records}
    return out


def plan(zone, desired, actual, purge=True, remove=False):
    """RRset changes for the API: REPLACE what differs, DELETE what is no longer wanted."""
    zone = canonical(zone)
    changes = []
    if remove:
        for key in sorted(desired):
            if key in actual:
                changes.append({"name": key[0], "type": key[1], "changetype": "DELETE"})
        return changes
    for key in sorted(desired):
        if actual.get(key) != desired[key]:
            changes.append({"name": key[0], "type": key[1], "ttl": desired[key]["ttl"], "changetype": "REPLACE",
                            "records": [{"content": c, "disabled": False} for c in desired[key]["records"]]})
    if purge:
        for key in sorted(actual):
            if key not in desired and not (key[0] == zone and key[1] in ZONE_OWNED):
                changes.append({"name": key[0], "type": key[1], "changetype": "DELETE"})
    return changes


def as_text(rrsets):
    """A readable, stable form of RRsets for diffs and results: {"name TYPE": [contents]}."""
    return dict(("%s %s" % key, value["records"]) for key, value in sorted(rrsets.items()))
