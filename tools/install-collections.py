"""Install the third-party collections the project needs, taken from PyPI.

No Galaxy server can be reached from the build machines, but PyPI can, and the
``ansible`` community package on PyPI carries every collection of the Ansible
community distribution.  This downloads the pinned ``ansible`` wheel (without
its dependencies) and unpacks only the collections listed in
``collections/requirements.yml`` (the versions there must match the wheel's) into
a collections path.  Where Galaxy is reachable, ``ansible-galaxy collection
install -r collections/requirements.yml`` gives the same result.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import yaml


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", required=True, type=pathlib.Path)
    parser.add_argument("--wheel-spec", required=True, help="pip spec of the ansible package, e.g. ansible==12.3.0")
    parser.add_argument("--dest", required=True, type=pathlib.Path, help="collections path (holds ansible_collections/)")
    args = parser.parse_args()

    wanted = yaml.safe_load(args.requirements.read_text())["collections"]
    root = args.dest / "ansible_collections"
    missing = []
    for item in wanted:
        ns, name = item["name"].split(".")
        manifest = root / ns / name / "MANIFEST.json"
        if not manifest.exists() or json.loads(manifest.read_text())["collection_info"]["version"] != item["version"]:
            missing.append(item)
    if not missing:
        print(f"collections up to date in {args.dest}")
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, args.wheel_spec], check=True)
        wheel = next(pathlib.Path(tmp).glob("ansible-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for item in missing:
                ns, name = item["name"].split(".")
                prefix = f"ansible_collections/{ns}/{name}/"
                members = [m for m in zf.namelist() if m.startswith(prefix)]
                if not members:
                    raise SystemExit(f"{item['name']} is not in {wheel.name}")
                version = json.loads(zf.read(prefix + "MANIFEST.json"))["collection_info"]["version"]
                if version != item["version"]:
                    raise SystemExit(f"{item['name']}: {wheel.name} carries {version}, requirements ask for {item['version']}")
                zf.extractall(args.dest, members)
                print(f"installed {item['name']} {version} into {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
