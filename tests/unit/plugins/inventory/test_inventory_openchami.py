"""hpc.vcluster.openchami against recorded OpenCHAMI SMD replies (fixtures/openchami_*.json)."""
import urllib.parse

import pytest
import responses
from ansible.errors import AnsibleError, AnsibleParserError

from inventory_harness import OC_SMD, OC_URL, register_openchami

BASE = {"plugin": "hpc.vcluster.openchami", "api_url": OC_URL, "token": "oc-static-token-123"}


def cfg(**extra):
    return dict(BASE, **extra)


def query(call):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(call.request.url).query)


@responses.activate
def test_three_requests_and_hosts_named_by_preference(parse):
    register_openchami()
    run = parse(cfg())
    assert [urllib.parse.urlsplit(c.request.url).path for c in responses.calls] == [
        "/hsm/v2/State/Components", "/hsm/v2/memberships", "/hsm/v2/Inventory/EthernetInterfaces"]
    assert all(c.request.headers["Authorization"] == "Bearer oc-static-token-123" for c in responses.calls)
    assert query(responses.calls[0]) == {"type": ["Node"]} and query(responses.calls[2]) == {"Type": ["Node"]}
    # hostname from the interface Description; "Node Maintenance Network" is no host name -> nid; the
    # Description "mgmt0" is shared by two nodes -> both fall back to nid; no hostname and no NID -> xname.
    assert sorted(run.hosts) == ["nid000001", "nid000002", "nid000003", "nid000004", "nid100002", "uan01", "x1000c0s4b0n0"]
    assert any("hostname 'mgmt0' (2 nodes)" in w for w in run.display.warnings)
    assert any("3 HTTP requests" in v for v in run.display.verbose)


@responses.activate
def test_hostvars_carry_component_fields_with_omitted_ones_as_none(parse):
    register_openchami()
    run = parse(cfg())
    full = run.hostvars("nid000002")
    assert full["ansible_host"] == "10.252.1.2"           # the NMN address, not the HMN one of the same node
    assert full["smd_mac"] == "02:a1:b2:c3:d4:e7" and full["smd_ip"] == "10.252.1.2"
    assert (full["smd_xname"], full["smd_nid"], full["smd_role"], full["smd_subrole"]) == ("x1000c0s1b0n0", 2, "Compute", "Worker")
    assert (full["smd_arch"], full["smd_state"], full["smd_flag"], full["smd_enabled"]) == ("X86", "Ready", "OK", True)
    assert (full["smd_class"], full["smd_net_type"], full["smd_type"], full["smd_hostname"]) == ("Mountain", "Sling", "Node", "nid000002")
    assert full["vcluster_labels"] == ["3d", "blue", "vc_blue"] and full["vcluster_partition"] == "p1"
    assert full["vcluster_site"] == "openchami"
    # after `ochami discover static`: only Enabled, ID, NID, Role, Type; address on an unnamed network
    sparse = run.hostvars("nid000004")
    assert sparse["smd_state"] is None and sparse["smd_arch"] is None and sparse["smd_flag"] is None
    assert sparse["ansible_host"] == "10.1.0.4" and sparse["vcluster_labels"] == [] and sparse["vcluster_partition"] == "p2.1"
    bare = run.hostvars("x1000c0s4b0n0")
    assert "ansible_host" not in bare and bare["smd_nid"] is None and bare["smd_enabled"] is None


@responses.activate
def test_groups_cfs_names_conversions_and_clashes_are_reported(parse):
    register_openchami()
    run = parse(cfg())
    assert run.group_names() == {
        "blue", "vc_blue", "vc_blue_2", "vc_red", "_3d", "maintenance", "login", "label_all", "p1", "p2_1",
        "Compute", "Compute_Worker", "Application", "Application_UAN", "Service", "arch_X86", "arch_ARM", "site_openchami"}
    assert run.members("vc_blue") == ["nid000002"]          # the label that is already a valid name keeps it
    assert run.members("vc_blue_2") == ["nid000001"]        # vc-blue converts to vc_blue too: suffixed, not merged
    assert run.members("Application_UAN") == ["uan01"] and run.members("p2_1") == ["nid000004"]
    assert "x1000c0s4b0n0" in run.members("label_all") and run.members("all") != ["x1000c0s4b0n0"]
    converted = next(w for w in run.display.warnings if "converted" in w)
    for text in ("label '3d' -> _3d", "label 'all' -> label_all", "label 'vc.red' -> vc_red", "partition 'p2.1' -> p2_1"):
        assert text in converted
    assert any("label 'vc-blue' -> vc_blue_2 (label vc_blue has the name)" in w for w in run.display.warnings)
    site_vars = run.inventory.groups["site_openchami"].get_vars()
    assert site_vars == {"vcluster_site_kind": "openchami", "vcluster_api_url": OC_URL}


@responses.activate
def test_hostnames_preferences_and_nid_format(parse):
    register_openchami()
    assert sorted(parse(cfg(hostnames=["xname"])).hosts)[:2] == ["x1000c0s0b0n0", "x1000c0s1b0n0"]
    register_openchami()
    run = parse(cfg(hostnames=["nid"], nid_format="node%04d"))
    assert sorted(run.hosts) == ["node0001", "node0002", "node0003", "node0004", "node100001", "node100002", "x1000c0s4b0n0"]
    with pytest.raises(AnsibleError, match="hostnames"):
        parse(cfg(hostnames=["fqdn"]))
    with pytest.raises(AnsibleParserError, match="nid_format"):
        parse(cfg(nid_format="nid"))


@responses.activate
def test_prefixes_group_by_and_group_names(parse):
    register_openchami()
    run = parse(cfg(hostvars_prefix="hsm_", group_prefix="oc_", group_by=["label", "partition", "state"],
                    group_names={"label": "grp_{label}", "partition": "prt_{partition}"}, interfaces=True))
    assert run.group_names() == {"oc_grp_blue", "oc_grp_vc_blue", "oc_grp_vc_blue_2", "oc_grp_vc_red", "oc_grp_3d",
                                 "oc_grp_maintenance", "oc_grp_login", "oc_grp_all", "oc_prt_p1", "oc_prt_p2_1",
                                 "oc_state_Ready", "oc_state_Standby", "oc_state_Empty", "oc_state_On"}
    hv = run.hostvars("nid000002")
    assert hv["hsm_role"] == "Compute" and "smd_role" not in hv and hv["vcluster_labels"] == ["3d", "blue", "vc_blue"]
    assert hv["hsm_interfaces"] == [
        {"mac": "02:a1:b2:c3:d4:e6", "description": "Node Maintenance Network", "ip": "10.254.1.2", "network": "HMN"},
        {"mac": "02:a1:b2:c3:d4:e7", "description": "nid000002", "ip": "10.252.1.2", "network": "NMN"}]


@pytest.mark.parametrize("group_names, message", [
    ({"label": "{label.__class__}"}, "uses {label.__class__}"),
    ({"role": "{label}"}, "uses {label}"),
    ({"colour": "{label}"}, "unknown kinds colour"),
    ('{"label": ', "JSON"),
])
def test_bad_group_names_are_one_readable_error(parse, group_names, message):
    with pytest.raises(AnsibleParserError, match="group_names") as err:
        parse(cfg(group_names=group_names))
    assert message in str(err.value) and "Traceback" not in str(err.value)


@responses.activate
def test_filters_are_sent_to_smd(parse):
    register_openchami()
    parse(cfg(filters={"role": ["Compute", "Application"], "enabled": True, "Arch": "X86", "group": "blue"}))
    components, memberships, interfaces = (query(c) for c in responses.calls)
    assert components == {"arch": ["X86"], "enabled": ["true"], "group": ["blue"], "role": ["Compute", "Application"], "type": ["Node"]}
    assert memberships == components
    assert interfaces == {"Type": ["Node"]}


@responses.activate
def test_type_filter_also_selects_interfaces(parse):
    register_openchami()
    parse(cfg(filters={"type": ["Node", "VirtualNode"]}))
    assert query(responses.calls[0])["type"] == ["Node", "VirtualNode"]
    assert query(responses.calls[2])["Type"] == ["Node", "VirtualNode"]


def test_unknown_filter_is_rejected_before_any_request(parse):
    with responses.RequestsMock() as mock:
        with pytest.raises(AnsibleParserError) as err:
            parse(cfg(filters={"rol": "Compute"}))
        assert len(mock.calls) == 0
    assert "filters has an unknown key 'rol'" in str(err.value) and "role" in str(err.value)


@responses.activate
def test_include_and_exclude_labels(parse):
    register_openchami()
    run = parse(cfg(include_labels=["vc*", "login"]))
    assert sorted(run.hosts) == ["nid000001", "nid000002", "nid000003", "uan01"]
    register_openchami()
    run = parse(cfg(include_labels=["vc*"], exclude_labels=["maint*"]))
    assert sorted(run.hosts) == ["nid000001", "nid000002"]
    assert "vc_red" not in run.group_names() and "maintenance" not in run.group_names()


@responses.activate
def test_constructed_compose_groups_keyed_groups(parse):
    register_openchami()
    run = parse(cfg(compose={"ansible_user": "'root'", "cabinet": "smd_xname[:5]"},
                    groups={"gpu_ready": "'blue' in vcluster_labels and smd_state == 'Ready'"},
                    keyed_groups=[{"key": "smd_flag", "prefix": "flag", "default_value": "none"}]))
    assert run.hostvars("nid000001")["ansible_user"] == "root" and run.hostvars("uan01")["cabinet"] == "x3000"
    assert run.members("gpu_ready") == ["nid000001", "nid000002"]
    assert run.members("flag_Alert") == ["nid000003"] and "x1000c0s4b0n0" in run.members("flag_none")


@responses.activate
def test_strict_makes_a_bad_expression_fatal(parse):
    register_openchami()
    parse(cfg(compose={"x": "no_such_var.attr"}))           # skipped when not strict
    register_openchami()
    with pytest.raises(AnsibleError, match="Could not set x"):
        parse(cfg(compose={"x": "no_such_var.attr"}, strict=True))


@responses.activate
def test_labels_from_the_api_are_not_templated(parse):
    """2.19 data tagging: API strings are untrusted, so a label holding Jinja stays text even through compose."""
    responses.get(OC_SMD + "/State/Components", json={"Components": [{"ID": "x1000c0s0b0n0", "Type": "Node", "NID": 1}]})
    responses.get(OC_SMD + "/memberships", json=[{"id": "x1000c0s0b0n0", "groupLabels": ["{{ lookup('pipe', 'id') }}"],
                                                 "partitionName": ""}])
    responses.get(OC_SMD + "/Inventory/EthernetInterfaces", json=[])
    run = parse(cfg(compose={"first_label": "vcluster_labels[0]"}))
    assert run.hostvars("nid000001")["first_label"] == "{{ lookup('pipe', 'id') }}"


@responses.activate
def test_every_option_reads_its_environment_variable(parse, monkeypatch):
    register_openchami(url=OC_URL + "/custom/smd")
    monkeypatch.setenv("VCLUSTER_API_URL", OC_URL)
    monkeypatch.setenv("VCLUSTER_TOKEN", "env-token-456")
    monkeypatch.setenv("VCLUSTER_SERVICE_URLS", '{"smd": "/custom/smd"}')
    monkeypatch.setenv("VCLUSTER_INVENTORY_FILTERS", '{"role": ["Compute"]}')
    monkeypatch.setenv("VCLUSTER_INVENTORY_HOSTNAMES", "nid,xname")
    monkeypatch.setenv("VCLUSTER_INVENTORY_GROUP_BY", "label,role")
    monkeypatch.setenv("VCLUSTER_INVENTORY_GROUP_NAMES", '{"label": "grp_{label}"}')
    monkeypatch.setenv("VCLUSTER_INVENTORY_HOSTVARS_PREFIX", "hsm_")
    monkeypatch.setenv("VCLUSTER_INVENTORY_EXCLUDE_LABELS", "maintenance,login")
    monkeypatch.setenv("VCLUSTER_INVENTORY_COMPOSE", '{"ansible_user": "\'admin\'"}')
    monkeypatch.setenv("VCLUSTER_INVENTORY_KEYED_GROUPS", '[{"key": "hsm_arch", "prefix": "cpu"}]')
    run = parse("plugin: openchami\n")
    assert responses.calls[0].request.headers["Authorization"] == "Bearer env-token-456"
    assert query(responses.calls[0])["role"] == ["Compute"]
    assert "nid000003" not in run.hosts and "nid100001" not in run.hosts and "nid000001" in run.hosts
    assert run.group_names() >= {"grp_blue", "Compute", "cpu_X86"} and "site_openchami" not in run.group_names()
    assert run.hostvars("nid000001")["hsm_xname"] == "x1000c0s0b0n0"
    assert run.hostvars("nid000001")["ansible_user"] == "admin"


@responses.activate
def test_token_from_site_access_token_variable(parse, monkeypatch):
    register_openchami()
    monkeypatch.setenv("MY_SITE_ACCESS_TOKEN", "ochami-cli-token")
    run = parse({"plugin": "hpc.vcluster.openchami", "api_url": OC_URL, "site_name": "my-site"})
    assert responses.calls[0].request.headers["Authorization"] == "Bearer ochami-cli-token"
    assert run.hostvars("nid000001")["vcluster_site"] == "my-site" and "site_my_site" in run.group_names()
    assert any("site 'my-site' -> site_my_site" in w for w in run.display.warnings)


@responses.activate
def test_token_file_is_reread_once_on_401(parse, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("old-token\n")

    def components(request):
        if request.headers["Authorization"] == "Bearer old-token":
            token_file.write_text("new-token\n")       # an outside process renews the file meanwhile
            return (401, {"Content-Type": "text/plain; charset=utf-8"}, "Unauthorized\n")
        return (200, {}, '{"Components": []}')
    responses.add_callback(responses.GET, OC_SMD + "/State/Components", callback=components)
    responses.get(OC_SMD + "/memberships", json=[])
    responses.get(OC_SMD + "/Inventory/EthernetInterfaces", json=[])
    run = parse({"plugin": "hpc.vcluster.openchami", "api_url": OC_URL, "token_file": str(token_file)})
    assert [c.request.headers["Authorization"] for c in responses.calls] == ["Bearer old-token"] + ["Bearer new-token"] * 3
    assert any("4 HTTP requests" in v for v in run.display.verbose)


@responses.activate
def test_bad_token_is_one_line_naming_site_and_fix_without_the_token(parse):
    responses.get(OC_SMD + "/State/Components", status=401, body="no token found\n", content_type="text/plain")
    with pytest.raises(AnsibleParserError) as err:
        parse(dict(cfg(), site_name="demo"))
    message = str(err.value)
    assert message.startswith("hpc.vcluster.openchami: site 'demo' (%s): SMD GET /hsm/v2/State/Components: 401" % OC_URL)
    assert "no token found" in message and "DEMO_ACCESS_TOKEN" in message and "\n" not in message
    assert "oc-static-token-123" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_unreachable_server_is_one_line_naming_site_and_fix(parse):
    with responses.RequestsMock() as mock:                  # nothing registered: connection refused
        with pytest.raises(AnsibleParserError) as err:
            parse(dict(cfg(), retries=0))
        assert len(mock.calls) == 1
    message = str(err.value)
    assert "site 'openchami' (%s)" % OC_URL in message and "cannot reach" in message
    assert "check api_url" in message and "\n" not in message


@responses.activate
def test_server_problem_detail_is_shown(parse):
    responses.get(OC_SMD + "/State/Components", status=400, json={
        "type": "about:blank", "title": "Bad Request", "status": 400,
        "detail": "bad query param: group and partition cannot both have more than one value"},
        content_type="application/problem+json")
    with pytest.raises(AnsibleParserError, match="group and partition cannot both have more than one value"):
        parse(cfg(filters={"group": ["a", "b"], "partition": ["p1", "p2"]}))


@responses.activate
def test_a_reply_that_is_not_smd_is_reported(parse):
    responses.get(OC_SMD + "/State/Components", json={"Components": []})
    responses.get(OC_SMD + "/memberships", json={"message": "this is a web portal"})
    responses.get(OC_SMD + "/Inventory/EthernetInterfaces", json=[])
    with pytest.raises(AnsibleParserError, match="memberships: the reply is not the list SMD returns"):
        parse(cfg())


@pytest.mark.parametrize("config, message", [
    ({"plugin": "hpc.vcluster.openchami"}, "api_url is required (or set VCLUSTER_API_URL)"),
    (dict(BASE, api_url="demo.openchami.cluster"), "api_url must be an http(s) URL"),
    (dict(BASE, ca_path="/nonexistent/ca.pem"), "ca_path /nonexistent/ca.pem does not exist"),
    (dict(BASE, service_urls={"hsm": "/x"}), "service_urls has unknown services hsm"),
    (dict(BASE, filters="role=Compute"), "filters must be a mapping or JSON text of one"),
])
def test_bad_site_options_are_one_readable_error(parse, config, message):
    with responses.RequestsMock() as mock:
        with pytest.raises(AnsibleParserError) as err:
            parse(config)
        assert len(mock.calls) == 0
    assert message in str(err.value) and str(err.value).startswith("hpc.vcluster.openchami")


def test_verify_file_accepts_our_suffixes_and_plugin_key(tmp_path):
    from inventory_harness import load
    plugin = load()
    for name, text, wanted in [
        ("lab.openchami.yml", "plugin: whatever\n", True),
        ("hpc_openchami.yaml", "{}\n", True),
        ("openchami.example.yml", "# example\nplugin: hpc.vcluster.openchami\n", True),
        ("site.yaml", "plugin: 'openchami'  # short name\n", True),
        ("hosts.yml", "all:\n  hosts: {a: {}}\n", False),
        ("other.yml", "plugin: hpc.vcluster.csm\n", False),
        ("inventory.ini", "plugin: hpc.vcluster.openchami\n", False),
    ]:
        path = tmp_path / name
        path.write_text(text)
        assert plugin.verify_file(str(path)) is wanted, name
    assert plugin.verify_file(str(tmp_path / "missing.openchami.yml")) is False


@responses.activate
def test_short_plugin_name_is_accepted(parse):
    register_openchami()
    run = parse(dict(BASE, plugin="openchami"))
    assert len(run.hosts) == 7


@responses.activate
@pytest.mark.parametrize("options, wanted", [({"validate_certs": False}, False), ({"ca_path": "CA"}, "CA"), ({}, "/env/bundle.pem")])
def test_ca_path_and_validate_certs_win_over_requests_ca_bundle(parse, monkeypatch, tmp_path, options, wanted):
    """requests lets REQUESTS_CA_BUNDLE replace a session's verify (psf/requests#3829); the site's choice must win."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    options = {k: (str(ca) if v == "CA" else v) for k, v in options.items()}
    register_openchami()
    parse(cfg(**options))
    assert {c.request.req_kwargs["verify"] for c in responses.calls} == {str(ca) if wanted == "CA" else wanted}


@responses.activate
def test_a_token_with_a_line_break_is_reported_without_the_token(parse, tmp_path):
    """requests refuses such a header and quotes it whole in its message: that must not reach the user."""
    secret = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n" + secret + "\n")
    with pytest.raises(AnsibleParserError) as err:
        parse({"plugin": "hpc.vcluster.openchami", "api_url": OC_URL, "token_file": str(token_file)})
    message = str(err.value)
    assert "token_file %s holds white space or a line break" % token_file in message
    assert secret not in message and "c2lnbmF0dXJl" not in message


def test_redact_scrubs_known_values_bearer_credentials_and_jwts():
    from ansible_collections.hpc.vcluster.plugins.plugin_utils._inventory import redact
    text = ("header value: 'Bearer opaque-123' and eyJhbGciOi.eyJzdWIiOiJ4In0.sig_-x plus s3cr3t-value, "
            "Authorization: basic dXNlcjpwYXNz")
    out = redact(text, ["s3cr3t-value", None, ""])
    assert "opaque-123" not in out and "eyJzdWIiOiJ4In0" not in out and "s3cr3t-value" not in out and "dXNlcjpwYXNz" not in out
    assert "Bearer <redacted>" in out and "<redacted token>" in out and "client_secret_basic" == redact("client_secret_basic")


@responses.activate
def test_empty_environment_variables_count_as_unset(parse, monkeypatch):
    """An AWX injector may set VCLUSTER_VALIDATE_CERTS="": ansible-core reads that as false; TLS must stay verified."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    for name in ("VCLUSTER_VALIDATE_CERTS", "VCLUSTER_CA_PATH", "VCLUSTER_TOKEN_FILE", "VCLUSTER_CLIENT_ID"):
        monkeypatch.setenv(name, "")
    register_openchami()
    parse(cfg())
    assert {c.request.req_kwargs["verify"] for c in responses.calls} == {"/env/bundle.pem"}
    assert responses.calls[0].request.headers["Authorization"] == "Bearer oc-static-token-123"
