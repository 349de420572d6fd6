#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: dns_zone
short_description: A vCluster's DNS zone and its records on the site DNS (PowerDNS Authoritative HTTP API)
version_added: "0.1.0"
description:
  - Creates, updates or deletes one zone on the site's DNS server through the PowerDNS Authoritative HTTP API (the DNS
    server CSM runs), with the records given. A vCluster owns its zones; with O(purge) the records of the zone that are
    not listed are removed (the zone's own SOA and NS records stay).
  - All changes to a zone go in one PATCH request, so the zone never shows half of an update.
  - O(account) marks the zone's owner; a zone that exists with another owner is refused, so one vCluster cannot take
    over another's names.
  - Every name and content is checked before any call (names are DNS names inside the zone, A and AAAA contents are
    addresses, a CNAME is the only record of its name).
author:
  - hpc.vcluster maintainers (@hpc-vcluster)
attributes:
  check_mode:
    support: full
    description: Reads the zone and reports the record changes that would be made.
  diff_mode:
    support: full
    description: Shows the zone's records (C(name TYPE) to contents) before and after.
  platform:
    support: full
    platforms: controller
    description: Runs where the site DNS's API is reachable, usually the controller.
options:
  zone:
    description: The zone, for example V(demo.vc.internal) (a trailing dot is optional).
    type: str
    required: true
  state:
    description: V(present) makes the zone hold the records; V(absent) deletes the zone (with O(records), only those).
    type: str
    choices: [present, absent]
    default: present
  records:
    description: The records of the zone (RRsets).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: A name relative to the zone (V(nid000001)), V(@) for the apex, or an absolute name ending in a dot.
        type: str
        required: true
      type:
        description: Record type.
        type: str
        choices: [A, AAAA, CNAME, TXT, PTR, SRV]
        default: A
      content:
        description: The record's contents (several make a set, for example round-robin addresses).
        type: list
        elements: str
        required: true
      ttl:
        description: Time to live, seconds.
        type: int
        default: 300
  purge:
    description: Remove the zone's records that are not in O(records) (the zone's SOA and NS records stay).
    type: bool
    default: true
  account:
    description: The zone's owner (the vCluster's name); a zone owned by another account is refused.
    type: str
    default: ""
  nameservers:
    description: NS records of a zone the module creates (the DNS server's own names).
    type: list
    elements: str
    default: []
  api_url:
    description:
      - Base URL of the PowerDNS API, for example V(http://10.252.0.4:8081). Falls back to E(VCLUSTER_DNS_API_URL).
    type: str
    required: true
  api_key:
    description: The API key. Falls back to E(VCLUSTER_DNS_API_KEY).
    type: str
    required: true
  server_id:
    description: The server's id in the API. Falls back to E(VCLUSTER_DNS_SERVER_ID).
    type: str
    default: localhost
  ca_path:
    description: CA bundle of the API's certificate (https). Falls back to E(VCLUSTER_DNS_CA_PATH).
    type: path
  validate_certs:
    description: Check the API's certificate.
    type: bool
    default: true
seealso:
  - module: hpc.vcluster.kube_node
"""

EXAMPLES = r"""
- name: The nodes of vCluster demo, an alias and a round-robin name, in its own zone
  hpc.vcluster.dns_zone:
    zone: demo.vc.internal
    account: demo
    records:
      - {name: nid000001, content: [10.252.1.1]}
      - {name: nid000002, content: [10.252.1.2]}
      - {name: login, type: CNAME, content: [nid000001]}
      - {name: compute, content: [10.252.1.1, 10.252.1.2]}
  delegate_to: localhost

- name: Delete the zone at destroy (API from VCLUSTER_DNS_API_URL and VCLUSTER_DNS_API_KEY)
  hpc.vcluster.dns_zone:
    zone: demo.vc.internal
    account: demo
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
zone:
  description: The zone's canonical name.
  returned: always
  type: str
  sample: demo.vc.internal.
created:
  description: Whether the zone was (would be) created.
  returned: always
  type: bool
  sample: false
changes:
  description: The RRset changes sent (that would be sent), as C(REPLACE name TYPE) or C(DELETE name TYPE).
  returned: always
  type: list
  elements: str
  sample: ["REPLACE nid000003.demo.vc.internal. A"]
records:
  description: The zone's records after the task, C(name TYPE) to contents.
  returned: always
  type: dict
  sample: {"nid000001.demo.vc.internal. A": ["10.252.1.1"]}
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.hpc.vcluster.plugins.module_utils._api import ApiError, HAS_REQUESTS, REQUESTS_IMPORT_ERROR
from ansible_collections.hpc.vcluster.plugins.module_utils._endpoint import Endpoint, EndpointError
from ansible_collections.hpc.vcluster.plugins.module_utils._pdns import (
    PowerDnsClient, RecordError, actual_rrsets, as_text, canonical, check_name, normalize_records, plan)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            zone=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            records=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                type=dict(type="str", default="A", choices=["A", "AAAA", "CNAME", "TXT", "PTR", "SRV"]),
                content=dict(type="list", elements="str", required=True),
                ttl=dict(type="int", default=300),
            )),
            purge=dict(type="bool", default=True),
            account=dict(type="str", default=""),
            nameservers=dict(type="list", elements="str", default=[]),
            api_url=dict(type="str", required=True, fallback=(env_fallback, ["VCLUSTER_DNS_API_URL"])),
            api_key=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["VCLUSTER_DNS_API_KEY"])),
            server_id=dict(type="str", default="localhost", fallback=(env_fallback, ["VCLUSTER_DNS_SERVER_ID"])),
            ca_path=dict(type="path", fallback=(env_fallback, ["VCLUSTER_DNS_CA_PATH"])),
            validate_certs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
    p = module.params
    try:
        zone = canonical(p["zone"])
        check_name(zone, "zone")
        for index, ns in enumerate(p["nameservers"]):
            check_name(canonical(ns), "nameservers[%d]" % index)
        desired = normalize_records(zone, p["records"])
        endpoint = Endpoint("site DNS API", p["api_url"], ca_path=p["ca_path"], validate_certs=p["validate_certs"])
        client = PowerDnsClient(endpoint, p["api_key"], p["server_id"] or "localhost")
        module.exit_json(**converge(client, zone, desired, p, module.check_mode))
    except (ApiError, EndpointError, RecordError) as exc:
        module.fail_json(msg=str(exc), zone=p["zone"])


def converge(client, zone, desired, p, check):
    existing = client.zone(zone)
    if existing is not None and p["account"] and (existing.get("account") or "") not in ("", p["account"]):
        raise RecordError("zone %s belongs to account %r, not %r: refusing to change another owner's zone" % (
            zone, existing.get("account"), p["account"]))
    actual = actual_rrsets(existing)
    result = dict(changed=False, zone=zone, created=False, changes=[], records=as_text(actual))
    if p["state"] == "absent":
        if existing is None:
            result["diff"] = {"before": {}, "after": {}}
            return result
        if not p["records"]:
            result.update(changed=True, changes=["DELETE zone %s" % zone], records={})
            result["diff"] = {"before": as_text(actual), "after": {}}
            if not check:
                client.delete_zone(zone)
            return result
        changes = plan(zone, desired, actual, remove=True)
    elif existing is None:
        rrsets = plan(zone, desired, {}, purge=False)
        after = dict(actual_rrsets({"rrsets": [dict(r, records=r["records"]) for r in rrsets]}))
        result.update(changed=True, created=True, changes=["REPLACE %s %s" % (r["name"], r["type"]) for r in rrsets],
                      records=as_text(after))
        result["diff"] = {"before": {}, "after": as_text(after)}
        if not check:
            for rr in rrsets:
                del rr["changetype"]
            created = client.create_zone(zone, rrsets, p["nameservers"], p["account"])
            result["records"] = as_text(actual_rrsets(created))
        return result
    else:
        changes = plan(zone, desired, actual, purge=p["purge"])
        if p["account"] and not existing.get("account"):
            result["changed"] = True
            if not check:
                client.set_account(zone, p["account"])
    after = dict(actual)
    for ch in changes:
        key = (ch["name"], ch["type"])
        if ch["changetype"] == "DELETE":
            after.pop(key, None)
        else:
            after[key] = {"ttl": ch["ttl"], "records": [r["content"] for r in ch["records"]]}
    result["changes"] = ["%s %s %s" % (c["changetype"], c["name"], c["type"]) for c in changes]
    result["records"] = as_text(after)
    result["diff"] = {"before": as_text(actual), "after": as_text(after)}
    if changes:
        result["changed"] = True
        if not check:
            client.patch_rrsets(zone, changes)
    return result


if __name__ == "__main__":
    main()
