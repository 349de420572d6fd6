"""The inventory plugins through the real ``ansible-inventory`` command against a real lab server, both faces.

The lab here is records only (``vcluster-lab up --records``: the control plane, no containers) in a private home,
prefix and free port, seeded with 300 nodes and 12 labels, plus two lab nodes; it is stopped by its pid at the end
(never ``vcluster-lab down``, which removes podman objects by prefix). Each test runs ``ansible-inventory`` as a user
does: the collection from ``.collections``, the project's ansible.cfg, the site from ``vcluster-lab env``, the
default inventory plugins (``auto`` picks ours) and AWX's ``ANSIBLE_INVENTORY_UNPARSED_FAILED``.
"""
from __future__ import annotations

import errno
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SEED_NODES, SEED_GROUPS, SEED_PARTITIONS = 300, 12, 2
LAB_NODES = 2
ALL_NODES = SEED_NODES + LAB_NODES
# requests lets these replace a session's CA bundle (psf/requests#3829); execution environments set them, so
# ansible-inventory runs with them set (the plugin must still verify with the lab's CA), the lab's CLI without.
CA_OVERRIDES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordsLab:
    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.ca = str(home / "tls" / "ca.pem")
        self.cli_env = {k: v for k, v in os.environ.items() if k not in CA_OVERRIDES}
        self.cli_env.update(VCLUSTER_LAB_PREFIX="vcinv" + secrets.token_hex(3), VCLUSTER_LAB_HOME=str(home))
        self._env = {}

    def cli(self, *args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "vcluster_lab.cli", *args, "--home", str(self.home)],
                              capture_output=True, text=True, env=self.cli_env, timeout=300, check=False)
        assert proc.returncode == 0, "vcluster-lab %s: %s%s" % (" ".join(args), proc.stderr, proc.stdout)
        return proc.stdout

    def env(self, face: str) -> dict:
        if face not in self._env:
            self._env[face] = json.loads(self.cli("env", "--face", face, "--format", "json"))
        return dict(self._env[face])

    def smd(self, method: str, path: str, **kwargs) -> requests.Response:
        token = self.env("openchami")["LAB_ACCESS_TOKEN"]
        response = requests.request(method, self.url + "/hsm/v2" + path, verify=self.ca, timeout=60,
                                    headers={"Authorization": "Bearer " + token}, **kwargs)
        assert response.status_code < 300, "%s %s: %s %s" % (method, path, response.status_code, response.text)
        return response

    def faults(self, **values) -> None:
        args = ["fault", "--clear"]
        for key, value in values.items():
            args += ["--" + key.replace("_", "-"), str(value)]
        self.cli(*args)

    def stop(self) -> None:
        try:
            pid = int((self.home / "server.pid").read_text().strip())
            os.kill(pid, signal.SIGTERM)
            for _attempt in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    instance = RecordsLab(tmp_path_factory.mktemp("inventory-lab") / "home")
    try:
        instance.cli("up", "--records", "--nodes", str(LAB_NODES), "--port", str(instance.port))
        instance.cli("seed", "--nodes", str(SEED_NODES), "--groups", str(SEED_GROUPS), "--partitions", str(SEED_PARTITIONS))
        # Names SMD accepts but Ansible does not: they must be converted and reported, never dropped.
        instance.smd("POST", "/groups", json={"label": "vc-blue", "description": "", "members": {"ids": ["x1000c0s0b0n0"]}})
        instance.smd("POST", "/partitions", json={"name": "p9.1", "description": "", "members": {"ids": ["x1000c0s1b0n0"]}})
        yield instance
    finally:
        instance.stop()


def inventory(lab, face, source, *args, env=None, path=None, check=True):
    """Run ansible-inventory on ``source`` (a mapping or YAML text) with the face's client environment."""
    full = dict(os.environ)
    for key in list(full):
        if key.startswith("VCLUSTER_") or key.endswith("_ACCESS_TOKEN"):
            del full[key]
    full.update(lab.env(face) if face else {})
    full.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                ANSIBLE_INVENTORY_UNPARSED_FAILED="1", ANSIBLE_VERBOSE_TO_STDERR="1", ANSIBLE_NOCOLOR="1",
                REQUESTS_CA_BUNDLE=SYSTEM_BUNDLE, CURL_CA_BUNDLE=SYSTEM_BUNDLE)
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    if path is None:
        path = lab.home.parent / ("src-%s.%s.yml" % (secrets.token_hex(4), face or "openchami"))
        path.write_text(source if isinstance(source, str) else yaml.safe_dump(source))
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(path), "--list", *args], capture_output=True,
                          text=True, env=full, timeout=300, check=False, cwd=str(ROOT))
    if check:
        assert proc.returncode == 0, proc.stderr
    proc.data = json.loads(proc.stdout) if proc.returncode == 0 else None
    return proc


def hostvars(proc):
    def plain(value):
        if isinstance(value, dict):
            return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, list) else value
    return plain(proc.data["_meta"]["hostvars"])


def members(proc, group):
    return sorted(proc.data.get(group, {}).get("hosts", []))


def request_count(proc):
    return int(re.findall(r"(\d+) HTTP requests in all", proc.stderr)[-1])


def smd_members(lab, label):
    return set(lab.smd("GET", "/groups/" + label).json()["members"]["ids"])


def test_openchami_face_hosts_groups_hostvars_and_conversion_report(lab):
    proc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami"}, "-vvv")
    hv = hostvars(proc)
    assert len(hv) == ALL_NODES and request_count(proc) == 3
    first = hv["nid000001"]
    assert (first["ansible_host"], first["smd_xname"], first["smd_nid"], first["smd_role"]) == ("10.252.1.1", "x1000c0s0b0n0", 1, "Compute")
    assert first["smd_hostname"] == "nid000001" and first["smd_mac"].startswith("02:") and first["smd_ip"] == "10.252.1.1"
    assert first["vcluster_labels"] == ["vc-blue"] and first["vcluster_site"] == "lab"
    assert first["vcluster_site_kind"] == "openchami" and first["vcluster_api_url"] == lab.url
    assert hv["nid000002"]["vcluster_partition"] == "p9.1"
    # every SMD label is a group with exactly SMD's members (by xname), the invalid ones converted
    labels = lab.smd("GET", "/groups/labels").json()
    assert len(labels) == SEED_GROUPS + 1
    for label in labels:
        group = "vc_blue" if label == "vc-blue" else label
        assert {hv[h]["smd_xname"] for h in members(proc, group)} == smd_members(lab, label), label
    assert members(proc, "vc_blue") == ["nid000001"] and members(proc, "p9_1") == ["nid000002"]
    assert "label 'vc-blue' -> vc_blue" in proc.stderr and "partition 'p9.1' -> p9_1" in proc.stderr
    assert "[WARNING]" in proc.stderr and "were converted" in proc.stderr
    roles = {v["smd_role"] for v in hv.values()}
    assert {"Compute", "Application", "Application_UAN", "site_lab", "arch_X86", "arch_ARM"} <= set(proc.data)
    assert roles >= {"Compute", "Application"} and len(members(proc, "site_lab")) == ALL_NODES


def test_csm_face_gives_the_same_inventory_with_keycloak(lab):
    oc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami"})
    csm = inventory(lab, "csm", {"plugin": "hpc.vcluster.csm"}, "-vvv")
    assert request_count(csm) == 4                      # the Keycloak token, then the same three HSM calls
    oc_hv, csm_hv = hostvars(oc), hostvars(csm)
    assert set(oc_hv) == set(csm_hv)
    strip = ("vcluster_site_kind",)
    assert all({k: v for k, v in oc_hv[h].items() if k not in strip} == {k: v for k, v in csm_hv[h].items() if k not in strip}
               for h in oc_hv)
    assert {g: sorted(v.get("hosts", [])) for g, v in oc.data.items() if g != "_meta"} == \
        {g: sorted(v.get("hosts", [])) for g, v in csm.data.items() if g != "_meta"}
    assert csm_hv["nid000001"]["vcluster_site_kind"] == "csm"


def test_server_side_filters_and_label_selection(lab):
    proc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami", "filters": {"role": "Compute", "group": "vc_00"}})
    reply = lab.smd("GET", "/State/Components", params={"role": "Compute", "group": "vc_00", "type": "Node"}).json()
    expected = {c["ID"] for c in reply["Components"]}
    assert expected and {v["smd_xname"] for v in hostvars(proc).values()} == expected
    proc = inventory(lab, "csm", {"plugin": "hpc.vcluster.csm", "include_labels": ["vc_0*"], "exclude_labels": ["gpu"]})
    hv = hostvars(proc)
    wanted = set().union(*(smd_members(lab, label) for label in ("vc_00", "vc_01", "vc_02"))) - smd_members(lab, "gpu")
    assert wanted and {v["smd_xname"] for v in hv.values()} == wanted
    assert "gpu" not in proc.data


def test_hostnames_group_names_and_constructed(lab):
    proc = inventory(lab, "openchami", {
        "plugin": "openchami", "hostnames": ["xname"], "group_prefix": "oc_", "hostvars_prefix": "hsm_",
        "group_names": {"label": "grp_{label}", "partition": "prt_{partition}"},
        "keyed_groups": [{"key": "hsm_state", "prefix": "state"}], "compose": {"ansible_user": "'root'"}},
        env={"ANSIBLE_INVENTORY_ENABLED": "hpc.vcluster.openchami"})
    hv = hostvars(proc)
    assert "x1000c0s0b0n0" in hv and hv["x1000c0s0b0n0"]["hsm_nid"] == 1 and hv["x1000c0s0b0n0"]["ansible_user"] == "root"
    assert members(proc, "oc_grp_vc_blue") == ["x1000c0s0b0n0"] and "oc_prt_p9_1" in proc.data
    assert "state_Ready" in proc.data and "oc_Compute" in proc.data


def test_multi_site_in_one_source(lab):
    secret = lab.env("csm")["VCLUSTER_CLIENT_SECRET"]
    source = {"plugin": "hpc.vcluster.openchami", "ca_path": lab.ca, "sites": [
        {"name": "oc", "api_url": lab.url, "group_prefix": "oc_", "filters": {"role": "Compute"}},
        {"name": "cray", "site_kind": "csm", "api_url": lab.url, "group_prefix": "cray_", "client_id": "admin-client",
         "client_secret": "{{ lookup('ansible.builtin.env', 'CRAY_SECRET') }}"},
    ]}
    proc = inventory(lab, None, source, "-vvv", env={"OC_ACCESS_TOKEN": lab.env("openchami")["LAB_ACCESS_TOKEN"],
                                                     "CRAY_SECRET": secret})
    hv = hostvars(proc)
    compute = sum(1 for v in hv.values() if v["vcluster_site"] == "oc")
    assert len(hv) == ALL_NODES + compute and request_count(proc) == 7
    assert hv["nid000001.oc"]["vcluster_site"] == "oc" and hv["nid000001.cray"]["vcluster_site"] == "cray"
    assert members(proc, "oc_vc_blue") == ["nid000001.oc"] and members(proc, "cray_vc_blue") == ["nid000001.cray"]
    assert len(members(proc, "cray_site_cray")) == ALL_NODES
    assert "host names are used by nodes of several sites" in proc.stderr
    assert secret not in proc.stderr + proc.stdout


def test_cache_hit_makes_no_request_and_flush_refetches(lab, tmp_path):
    source = tmp_path / "cached.openchami.yml"             # the cache key includes the source's path
    source.write_text(yaml.safe_dump({"plugin": "hpc.vcluster.openchami", "retries": 0, "cache": True,
                                      "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache")}))
    first = inventory(lab, "openchami", None, "-vvv", path=source)
    assert request_count(first) == 3
    lab.faults(error_rate=1.0)                          # from now on every site request fails
    try:
        second = inventory(lab, "openchami", None, "-vvv", path=source)
        assert request_count(second) == 0 and "from the cache (0 HTTP requests)" in second.stderr
        assert hostvars(second) == hostvars(first)
        flushed = inventory(lab, "openchami", None, "--flush-cache", path=source, check=False)
        assert flushed.returncode != 0 and "site 'lab' (%s)" % lab.url in flushed.stderr
        assert re.search(r"50[03]", flushed.stderr) and "Traceback" not in flushed.stderr
    finally:
        lab.faults()
    assert request_count(inventory(lab, "openchami", None, "--flush-cache", "-vvv", path=source)) == 3
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and lab.env("openchami")["LAB_ACCESS_TOKEN"] not in cached[0].read_text()


def test_401_refreshes_the_token_file_once(lab, tmp_path):
    """The first token is refused (a signature the lab's keys do not verify); after the 401 the file is re-read."""
    good = lab.env("openchami")["LAB_ACCESS_TOKEN"]
    head, payload, signature = good.split(".")
    refused = ".".join((head, payload, signature[::-1]))      # still a JWT that has not expired: only SMD says no
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    served = []

    def reader_present():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return True
        except OSError as exc:                                  # ENXIO: nobody has the FIFO open for reading
            assert exc.errno == errno.ENXIO
            return False

    def serve():
        with open(fifo, "w") as handle:                         # blocks until the plugin opens the file
            handle.write(refused + "\n")
        served.append(refused)
        deadline = time.monotonic() + 120
        while reader_present() and time.monotonic() < deadline:    # the plugin still reads the first token
            time.sleep(0.01)
        with open(fifo, "w") as handle:                         # the re-read after the 401
            handle.write(good + "\n")
        served.append(good)
    writer = threading.Thread(target=serve, daemon=True)
    writer.start()
    proc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami", "token_file": str(fifo)}, "-vvv")
    writer.join(timeout=5)
    assert served == [refused, good]
    assert request_count(proc) == 4 and len(hostvars(proc)) == ALL_NODES
    assert good not in proc.stderr + proc.stdout and refused not in proc.stderr


def assert_one_readable_error(proc, *parts, secrets_=()):
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    for part in parts:
        assert part in proc.stderr, (part, proc.stderr)
    assert "Traceback" not in text and 'File "' not in text
    for secret in secrets_:
        assert secret not in text
    ours = [line for line in proc.stderr.splitlines() if line.startswith("hpc.vcluster.")]
    assert ours and all(len(line) < 600 for line in ours)


def test_bad_token_is_one_readable_error_without_the_token_at_vvvv(lab):
    bad = "not-a-valid-token-" + secrets.token_hex(8)
    proc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami"}, "-vvvv", env={"LAB_ACCESS_TOKEN": bad},
                     check=False)
    # GET /State/Components is public on OpenCHAMI's SMD (as is EthernetInterfaces): /memberships is the first to refuse
    assert_one_readable_error(proc, "hpc.vcluster.openchami: site 'lab' (%s): SMD GET /hsm/v2/memberships: 401" % lab.url,
                              "check the token (token, token_file, LAB_ACCESS_TOKEN or client credentials)", secrets_=(bad,))


def test_expired_token_from_the_token_ttl_fault(lab):
    lab.faults(token_ttl=1)
    try:
        lab._env.pop("openchami", None)
        short = lab.env("openchami")["LAB_ACCESS_TOKEN"]
    finally:
        lab.faults()
        lab._env.pop("openchami", None)
    time.sleep(2)
    proc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami"}, "-vvvv", env={"LAB_ACCESS_TOKEN": short},
                     check=False)
    assert_one_readable_error(proc, "site 'lab'", "the token from LAB_ACCESS_TOKEN expired at", "get a new one",
                              secrets_=(short,))


def test_bad_client_secret_on_csm_names_the_fix_without_the_secret(lab):
    bad = "wrong-" + secrets.token_hex(8)
    proc = inventory(lab, "csm", {"plugin": "hpc.vcluster.csm"}, "-vvvv", env={"VCLUSTER_CLIENT_SECRET": bad}, check=False)
    assert_one_readable_error(proc, "hpc.vcluster.csm: site 'lab' (%s): TOKEN POST" % lab.url, "401",
                              "check client_id and client_secret", secrets_=(bad,))


def test_unreachable_server_and_tls_errors_are_readable(lab):
    closed = "https://127.0.0.1:%d" % free_port()
    proc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami", "retries": 0}, "-vvvv",
                     env={"VCLUSTER_API_URL": closed}, check=False)
    assert_one_readable_error(proc, "site 'lab' (%s)" % closed, "cannot reach", "check api_url",
                              secrets_=(lab.env("openchami")["LAB_ACCESS_TOKEN"],))
    proc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami"}, env={"VCLUSTER_CA_PATH": None}, check=False)
    assert_one_readable_error(proc, "site 'lab'", "TLS verification failed", "set ca_path")


def test_bad_options_are_readable(lab):
    proc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami", "filters": {"rol": "Compute"}}, check=False)
    assert_one_readable_error(proc, "filters has an unknown key 'rol'; SMD component filters are id, type")
    proc = inventory(lab, "openchami", {"plugin": "hpc.vcluster.openchami", "sites": [{"api_url": lab.url}]}, check=False)
    assert proc.returncode != 0 and "sites[0] needs a name" in proc.stderr and "Traceback" not in proc.stderr


def test_successful_runs_print_no_secret_at_vvvv(lab):
    token = lab.env("openchami")["LAB_ACCESS_TOKEN"]
    secret = lab.env("csm")["VCLUSTER_CLIENT_SECRET"]
    for face, hidden in (("openchami", token), ("csm", secret)):
        proc = inventory(lab, face, {"plugin": "hpc.vcluster.%s" % face}, "-vvvv")
        assert hidden not in proc.stdout + proc.stderr and "HTTP requests in all" in proc.stderr


@pytest.mark.parametrize("face", ["openchami", "csm"])
def test_example_inventory_sources_work(lab, face):
    proc = inventory(lab, face, None, path=ROOT / "inventories" / ("%s.example.yml" % face))
    hv = hostvars(proc)
    assert hv and all(v["vcluster_site"] == "lab" for v in hv.values())
    if face == "csm":
        assert {v["smd_role"] for v in hv.values()} <= {"Compute", "Application"} and any(g.startswith("hsm_state_") for g in proc.data)
    else:
        assert hv["nid000001"]["ansible_user"] == "root" and len(hv) == ALL_NODES
