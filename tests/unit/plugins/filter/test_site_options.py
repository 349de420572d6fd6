"""hpc.vcluster.site_options: one site's module options from the fleet's sites list."""
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hpc.vcluster.plugins.filter.site import site_options

SITES = [
    {"name": "site-a", "site_kind": "openchami", "api_url": "https://a:8443", "client_id": "ca",
     "client_secret": "sa", "group_prefix": "a_", "filters": {"role": "Compute"}, "allowed_labels": ["tiny"]},
    {"name": "site-b", "site_kind": "csm", "api_url": "https://b", "token": "tb"},
]


def test_picks_the_named_site_without_inventory_keys():
    assert site_options(SITES, "site-a") == {"site_name": "site-a", "site_kind": "openchami", "api_url": "https://a:8443",
                                             "client_id": "ca", "client_secret": "sa", "allowed_labels": ["tiny"]}
    # never another site's credentials
    assert site_options(json.dumps(SITES), "site-b") == {"site_name": "site-b", "site_kind": "csm",
                                                         "api_url": "https://b", "token": "tb"}
    assert site_options({"x": {"api_url": "https://x"}}, "x") == {"site_name": "x", "api_url": "https://x"}


@pytest.mark.parametrize("sites, name, message", [
    (SITES, "site-c", "no site 'site-c' in the sites list; it has site-a, site-b"),
    ([{"name": "a", "api_uri": "x"}], "a", "site 'a' has unknown keys api_uri"),
    ("[{", "a", "the sites are not JSON"),
    ([{"api_url": "x"}], "a", "each a mapping with a name"),
])
def test_errors_name_what_is_wrong(sites, name, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("[", r"\[")):
        site_options(sites, name)
