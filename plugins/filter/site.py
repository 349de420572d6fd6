# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One site's module options out of a fleet's sites list (documented in site_options.yml).

A fleet is described once, as the inventory plugins' ``sites`` option takes it (the
``hpc.vcluster fleet`` AWX credential injects it as ``VCLUSTER_INVENTORY_SITES``); a play
that deploys vClusters on several sites gives each one ``module_defaults`` for the
``hpc.vcluster.site`` group made by this filter from the entry its manifest names.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc.vcluster.plugins.module_utils._site import SITE_OPTION_ENV

#: Keys of a sites entry that only the inventory uses.
INVENTORY_ONLY = ("group_prefix", "prefix", "filters")
#: Access options (hpc.vcluster.access fragment) a fleet entry may carry for its site's modules.
ACCESS = ("allowed_labels", "rbac_from_token")


def _entries(sites):
    if isinstance(sites, str):
        try:
            sites = json.loads(sites) if sites.strip() else []
        except ValueError as exc:
            raise AnsibleFilterError(f"hpc.vcluster.site_options: the sites are not JSON ({exc.msg})") from None
    if isinstance(sites, Mapping):
        sites = [dict(entry, name=name) for name, entry in sites.items()]
    if isinstance(sites, list):
        # the inventory plugins take site_name for name too
        sites = [dict(e, name=e.get("name") or e.get("site_name")) if isinstance(e, Mapping) else e for e in sites]
    if not isinstance(sites, list) or not all(isinstance(e, Mapping) and e.get("name") for e in sites):
        raise AnsibleFilterError("hpc.vcluster.site_options: expected a list of sites, each a mapping with a name "
                                 "(the inventory plugins' sites option), or a mapping of name to site")
    return sites


def site_options(sites, name):
    """The hpc.vcluster.site module options of site ``name`` in ``sites`` (its name as site_name)."""
    entries = _entries(sites)
    found = [e for e in entries if e["name"] == name]
    if not found:
        raise AnsibleFilterError(f"hpc.vcluster.site_options: no site {name!r} in the sites list; it has "
                                 f"{', '.join(sorted(str(e['name']) for e in entries)) or 'none'}")
    entry = found[0]
    allowed = set(SITE_OPTION_ENV) | set(INVENTORY_ONLY) | set(ACCESS) | {"name"}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise AnsibleFilterError(f"hpc.vcluster.site_options: site {name!r} has unknown keys {', '.join(unknown)}; "
                                 f"allowed: {', '.join(sorted(allowed))}")
    options = {k: v for k, v in entry.items() if (k in SITE_OPTION_ENV or k in ACCESS) and v is not None}
    options["site_name"] = entry["name"]
    return options


class FilterModule(object):
    def filters(self):
        return {"site_options": site_options}
