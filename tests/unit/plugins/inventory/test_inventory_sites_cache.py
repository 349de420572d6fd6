"""Several sites in one source, and the cache of raw replies (ansible.builtin.jsonfile)."""
import json
import urllib.parse

import pytest
import responses
from ansible.errors import AnsibleParserError

from inventory_harness import CSM_SMD, CSM_URL, OC_SMD, OC_URL, fixture, register_csm, register_openchami

B_URL = "https://beta.example.org"


def two_sites(**extra):
    config = {"plugin": "hpc.vcluster.openchami", "sites": [
        {"name": "alpha", "api_url": OC_URL, "token": "alpha-token", "group_prefix": "a_"},
        {"name": "beta", "api_url": B_URL, "token": "beta-token", "prefix": "b_", "filters": {"role": "Compute"}},
    ]}
    config.update(extra)
    return config


@responses.activate
def test_two_sites_each_with_its_url_token_prefix_and_filters(parse):
    register_openchami()
    register_openchami(url=B_URL + "/hsm/v2")
    run = parse(two_sites())
    by_host = {urllib.parse.urlsplit(c.request.url).netloc: c.request.headers["Authorization"] for c in responses.calls}
    assert by_host == {"oc.example.org:8443": "Bearer alpha-token", "beta.example.org": "Bearer beta-token"}
    beta_queries = [urllib.parse.parse_qs(urllib.parse.urlsplit(c.request.url).query)
                    for c in responses.calls if "beta" in c.request.url]
    assert beta_queries[0] == {"role": ["Compute"], "type": ["Node"]}
    assert run.hostvars("uan01.alpha")["vcluster_site"] == "alpha"
    assert run.hostvars("nid000001.beta")["vcluster_site"] == "beta"
    assert run.members("a_site_alpha")[:2] == ["nid000001.alpha", "nid000002.alpha"]
    assert "a_blue" in run.group_names() and "b_blue" in run.group_names() and "blue" not in run.group_names()
    assert run.inventory.groups["b_site_beta"].get_vars() == {"vcluster_site_kind": "openchami", "vcluster_api_url": B_URL}
    collisions = next(w for w in run.display.warnings if "several sites" in w)
    assert "nid000001 -> nid000001.alpha, nid000001.beta" in collisions


@responses.activate
def test_sites_of_both_kinds_and_inherited_options(parse, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    register_openchami()
    register_csm()
    run = parse({"plugin": "hpc.vcluster.openchami", "ca_path": str(ca), "token": "never-sent-anywhere", "sites": [
        {"name": "oc", "api_url": OC_URL, "token": "oc-token"},
        {"name": "cray", "site_kind": "csm", "api_url": CSM_URL, "client_id": "admin-client", "client_secret": "s"},
    ]})
    keycloak_token = fixture("keycloak_token.json")["access_token"]
    sent = {urllib.parse.urlsplit(c.request.url).netloc + " " + str(c.request.headers.get("Authorization"))
            for c in responses.calls}
    assert sent == {"oc.example.org:8443 Bearer oc-token", "api-gw-service-nmn.local None",
                    "api-gw-service-nmn.local Bearer " + keycloak_token}
    assert all(c.request.headers.get("Authorization") != "Bearer never-sent-anywhere" for c in responses.calls)
    assert all(c.request.req_kwargs["verify"] == str(ca) for c in responses.calls if c.request.method == "GET")
    assert run.hostvars("nid100001")["smd_role"] == "Management"     # unique across sites: not qualified
    assert run.hostvars("uan01")["vcluster_site"] == "oc"
    assert run.hostvars("nid100002.cray")["smd_subrole"] == "Worker" and run.hostvars("nid100002.oc")["smd_role"] == "Service"
    assert run.inventory.groups["site_cray"].get_vars()["vcluster_site_kind"] == "csm"


@responses.activate
def test_templated_secret_in_a_site_entry(parse, monkeypatch):
    monkeypatch.setenv("BETA_SECRET_TOKEN", "from-the-environment")
    register_openchami(url=B_URL + "/hsm/v2")
    text = ("plugin: hpc.vcluster.openchami\nsites:\n  - name: beta\n    api_url: %s\n"
            "    token: \"{{ lookup('ansible.builtin.env', 'BETA_SECRET_TOKEN') }}\"\n" % B_URL)
    parse(text)
    assert responses.calls[0].request.headers["Authorization"] == "Bearer from-the-environment"


@responses.activate
def test_sites_from_the_environment_as_json(parse, monkeypatch):
    register_openchami(url=B_URL + "/hsm/v2")
    monkeypatch.setenv("VCLUSTER_INVENTORY_SITES", json.dumps([{"name": "beta", "api_url": B_URL}]))
    monkeypatch.setenv("BETA_ACCESS_TOKEN", "beta-env-token")
    run = parse("plugin: hpc.vcluster.openchami\n")
    assert responses.calls[0].request.headers["Authorization"] == "Bearer beta-env-token"
    assert "site_beta" in run.group_names()


@pytest.mark.parametrize("sites, message", [
    ([{"api_url": OC_URL}], "sites[0] needs a name"),
    ([{"name": "a", "api_url": OC_URL}, {"name": "a", "api_url": B_URL}], "the site name 'a' is used twice"),
    ([{"name": "a", "api_url": OC_URL, "tokn": "x"}], "sites[0] has unknown keys tokn"),
    ([{"name": "a", "api_url": OC_URL, "filters": {"colour": "red"}}], "sites[0].filters has an unknown key 'colour'"),
    ([{"name": "a", "api_url": OC_URL, "site_kind": "slurm"}], "site_kind must be one of openchami, csm"),
    ({"name": "a"}, "sites must be a list"),
])
def test_bad_site_entries_are_one_readable_error(parse, sites, message):
    with pytest.raises(AnsibleParserError) as err:
        parse({"plugin": "hpc.vcluster.openchami", "sites": sites})
    assert message in str(err.value)


@responses.activate
def test_one_unreachable_site_fails_the_source_naming_it(parse):
    register_openchami()
    with pytest.raises(AnsibleParserError) as err:
        parse(two_sites(retries=0))
    message = str(err.value)
    assert "site 'beta' (%s)" % B_URL in message and "cannot reach" in message and "alpha" not in message
    assert "beta-token" not in message


def cached(tmp_path, **extra):
    config = {"plugin": "hpc.vcluster.openchami", "api_url": OC_URL, "token": "cache-token-789", "cache": True,
              "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"), "cache_timeout": 600}
    config.update(extra)
    return config


def test_cache_hit_makes_no_request_and_rebuilds_groups(parse, tmp_path):
    with responses.RequestsMock() as mock:
        register_openchami(mock=mock)
        first = parse(cached(tmp_path))
        assert len(mock.calls) == 3
    with responses.RequestsMock() as mock:                   # any request would now fail: nothing is registered
        second = parse(cached(tmp_path, group_prefix="x_", hostnames=["xname"]))
        assert len(mock.calls) == 0
    assert len(second.hosts) == len(first.hosts) == 7
    assert "x_blue" in second.group_names() and "x1000c0s0b0n0" in second.hosts   # built anew from the replies
    assert any("from the cache (0 HTTP requests)" in v for v in second.display.verbose)
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and "cache-token-789" not in files[0].read_text()


def test_flush_cache_refetches(parse, tmp_path):
    with responses.RequestsMock() as mock:
        register_openchami(mock=mock)
        parse(cached(tmp_path))
        register_openchami(mock=mock)
        parse(cached(tmp_path), cache=False)               # what --flush-cache and refresh_inventory pass
        assert len(mock.calls) == 6


def test_options_that_shape_queries_are_part_of_the_key(parse, tmp_path):
    with responses.RequestsMock() as mock:
        register_openchami(mock=mock)
        parse(cached(tmp_path))
        register_openchami(mock=mock)
        parse(cached(tmp_path, filters={"role": "Compute"}))   # another query: not served from the first entry
        assert len(mock.calls) == 6
        parse(cached(tmp_path, token="another-token", include_labels=["blue"]))   # not query-shaping: a hit
        assert len(mock.calls) == 6
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_entries_of_another_format_are_ignored(parse, tmp_path):
    with responses.RequestsMock() as mock:
        register_openchami(mock=mock)
        parse(cached(tmp_path))
        from ansible_collections.hpc.vcluster.plugins.plugin_utils import _inventory
        old = _inventory.CACHE_FORMAT
        _inventory.CACHE_FORMAT = old + 1
        try:
            register_openchami(mock=mock)
            parse(cached(tmp_path))
        finally:
            _inventory.CACHE_FORMAT = old
        assert len(mock.calls) == 6


def test_multi_site_cache_is_per_site(parse, tmp_path):
    with responses.RequestsMock() as mock:
        register_openchami(mock=mock)
        register_openchami(url=B_URL + "/hsm/v2", mock=mock)
        parse(two_sites(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "c")))
        assert len(mock.calls) == 6
        run = parse(two_sites(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "c")))
        assert len(mock.calls) == 6 and len(run.hosts) == 14
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert len(names) == 2 and "_alpha_" in names[0] and "_beta_" in names[1]


@responses.activate
def test_csm_cache_hit_skips_the_token_request_too(parse, tmp_path):
    register_csm()
    config = {"plugin": "hpc.vcluster.csm", "api_url": CSM_URL, "client_id": "admin-client", "client_secret": "s",
              "cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "c")}
    parse(config, plugin="hpc.vcluster.csm")
    assert len(responses.calls) == 4
    run = parse(config, plugin="hpc.vcluster.csm")
    assert len(responses.calls) == 4 and len(run.hosts) == 6
    assert not responses.calls[1].request.url.startswith(OC_SMD) and responses.calls[1].request.url.startswith(CSM_SMD)
