"""The host's packages are listed three times; they must say the same thing.

The Makefile's ``APT_PACKAGES`` is what ``make deps`` installs, ``bindep.txt`` is what
tools (ansible-builder, bindep) read, and ``vcluster_lab.host_deps`` says which executable
each package gives and who runs it. The scan at the end finds executables the code runs
that the table does not know.
"""
from __future__ import annotations

import re
from pathlib import Path

from vcluster_lab import host_deps

ROOT = Path(__file__).resolve().parents[2]


def makefile_packages() -> set[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(r"^APT_PACKAGES\s*:=\s*(.+)$", text, re.M)
    assert match, "the Makefile has no APT_PACKAGES line"
    return set(match.group(1).split())


def bindep_packages(platform: str = "dpkg") -> set[str]:
    """Packages bindep would consider on ``platform``, in any profile."""
    names = set()
    for line in (ROOT / "bindep.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, rest = (line.split(None, 1) + [""])[:2]
        selectors = re.findall(r"[\w:.-]+", rest.partition("[")[2].partition("]")[0])
        platforms = [s.split(":", 1)[1] for s in selectors if s.startswith("platform:")]
        if not platforms or platform in platforms:
            names.add(name)
    return names


def test_makefile_bindep_and_table_list_the_same_packages():
    make, bindep, table = makefile_packages(), bindep_packages(), host_deps.packages()
    assert make == bindep, f"Makefile only: {sorted(make - bindep)}; bindep.txt only: {sorted(bindep - make)}"
    assert make == table, f"Makefile only: {sorted(make - table)}; host_deps only: {sorted(table - make)}"


def test_every_lab_tool_is_in_the_table_and_has_a_reason():
    names = [tool.name for tool in host_deps.TOOLS]
    assert len(names) == len(set(names))
    for tool in host_deps.TOOLS:
        assert tool.why and tool.users, tool
    assert {"podman", "iptables", "netavark", "ssh"} <= {tool.name for tool in host_deps.lab_tools()} | {"ssh"}


def test_install_hint_names_the_packages():
    tools = [t for t in host_deps.TOOLS if t.name in ("iptables", "ssh", "ssh-keygen")]
    assert host_deps.install_hint(tools) == "apt-get install iptables openssh-client"


def test_missing_looks_on_the_given_path(tmp_path):
    (tmp_path / "podman").write_text("#!/bin/sh\n")
    (tmp_path / "podman").chmod(0o755)
    podman = [t for t in host_deps.TOOLS if t.name == "podman"]
    iptables = [t for t in host_deps.TOOLS if t.name == "iptables"]
    assert not host_deps.missing(podman, path=str(tmp_path))
    assert host_deps.missing(iptables, path=str(tmp_path)) == iptables


#: How the code runs a host program: shutil.which("x"), or an argv list starting with "x".
RUNS = re.compile(r"""which\(\s*["']([\w.+-]+)["']|(?:run|Popen|check_output|check_call)\(\s*\[\s*["']([\w.+-]+)["']""")
#: Programs the scan finds that are not host packages' (the venv's own console scripts).
NOT_HOST = {"python", "python3", "vcluster-lab", "ansible-playbook", "ansible-galaxy", "ansible-doc",
            "ansible-inventory", "ansible-test", "molecule", "pytest"}


def test_every_program_the_code_runs_is_in_the_table():
    known = {tool.name for tool in host_deps.TOOLS} | NOT_HOST
    found = {}
    for base in ("lab", "tools", "tests", "plugins"):
        for path in (ROOT / base).rglob("*.py"):
            if path.resolve() == Path(__file__).resolve():
                continue
            for match in RUNS.finditer(path.read_text(errors="replace")):
                name = match.group(1) or match.group(2)
                found.setdefault(name, str(path.relative_to(ROOT)))
    unknown = {name: where for name, where in found.items() if name not in known}
    assert not unknown, f"programs run on the host but missing from vcluster_lab.host_deps.TOOLS: {unknown}"
    assert {"podman", "ssh-keygen", "ip"} <= set(found), found
