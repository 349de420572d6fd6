"""Run every Molecule scenario of the repository: ``molecule test -s <name>`` for each
``molecule/<name>/molecule.yml``, after making sure the lab's base image exists.

A scenario may use more things the lab makes, all cached:

* ``molecule/<name>/image.yml``: an image-builder recipe on the base image (the packages a
  node would have in its image, so converge does not spend minutes in apt); its
  reference is exported as ``VCLUSTER_MOLECULE_IMAGE``;
* the site package repository (when molecule.yml mentions ``VCLUSTER_LAB_SITE_REPO``): its
  image and served tree, exported as ``VCLUSTER_LAB_SITE_REPO_IMAGE`` and
  ``VCLUSTER_LAB_SITE_REPO_WWW``, for a platform that serves it on the scenario's network;
* another site service's image (when molecule.yml mentions ``VCLUSTER_LAB_SITE_<NAME>_IMAGE``,
  e.g. ``VCLUSTER_LAB_SITE_DNS_IMAGE``): the image the lab runs that service from, exported
  under that name, so the scenario tests the lab's own service build.

Usage: .venv/bin/python tools/run-molecule.py [--images-only] [SCENARIO ...]   (default: all scenarios)

``--images-only`` makes (or finds cached) what the scenarios need and runs none: ``make test``
runs it before the integration tests and the scenarios side by side, so that no image is built
while the integration tests' lab is up (their teardown checks that no build container is left).

The scenarios run one after the other, or ``--jobs N`` at a time (``make test`` runs two:
a scenario spends much of its time waiting on its containers). With more than one job, each
line is prefixed with its scenario's name, and the longest scenarios of the last run (their
times are kept in ``~/.cache/vcluster-lab/molecule-times.json``) start first, so the jobs end
close together. Each scenario's time and result are printed; the exit status is 0 only if
every scenario passed. podman
runs with the project's containers.conf (CONTAINERS_CONF), as the lab needs here.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def scenarios() -> list[str]:
    """Names of the scenarios: the directories of molecule/ that hold a molecule.yml."""
    return sorted(path.parent.name for path in (ROOT / "molecule").glob("*/molecule.yml"))


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(ROOT / "lab" / "containers.conf")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / ".collections")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env.setdefault("PY_COLORS", "0")
    return env


def ensure_base_image() -> str:
    """The lab's base image (``vcluster_lab.images.ensure_base``), imported if missing."""
    os.environ["CONTAINERS_CONF"] = str(ROOT / "lab" / "containers.conf")
    try:
        from vcluster_lab.images import ensure_base  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise SystemExit(f"run-molecule: the lab package is not installed in this Python ({sys.executable}): "
                         f"{exc}; run 'make venv' (or pip install -e lab)") from exc
    image = ensure_base(log=lambda msg: print(f"run-molecule: {msg}", flush=True))
    return image.ref


def scenario_environment(name: str) -> dict[str, str]:
    """What scenario ``name`` needs from the lab (see the module docstring), made if missing."""
    from vcluster_lab import images, site_repo, site_services  # pylint: disable=import-outside-toplevel
    env: dict[str, str] = {}
    directory = ROOT / "molecule" / name

    def say(msg: str) -> None:
        print(f"run-molecule: {msg}", flush=True)
    recipe = directory / "image.yml"
    if recipe.is_file():
        data = images.load_recipe(recipe)
        # scenarios whose image.yml names the same image share one build
        image = images.cached_image((data.get("options") or {}).get("name") or f"vclab-molecule-{name}", data,
                                    base_dir=directory, log=say)
        env["VCLUSTER_MOLECULE_IMAGE"] = image.ref
    text = (directory / "molecule.yml").read_text()
    for service in site_services.catalogue().values():
        variable = f"VCLUSTER_LAB_SITE_{service.name.upper()}"
        if variable not in text:
            continue
        image = site_services.ensure_image(service, say)
        env[f"{variable}_IMAGE"] = image.ref
        if service.name == "repo":
            env[f"{variable}_WWW"] = str(site_repo.prepare(image.ref, say))
    return env


TIMES = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vcluster-lab" / "molecule-times.json"


def load_times() -> dict[str, float]:
    """Each scenario's time in its last passing run (an empty mapping when none is kept or readable)."""
    try:
        kept = json.loads(TIMES.read_text())
    except (OSError, ValueError):
        return {}
    return {name: float(seconds) for name, seconds in kept.items()
            if isinstance(seconds, (int, float))} if isinstance(kept, dict) else {}


def save_times(times: dict[str, float], new: dict[str, float]) -> None:
    try:
        TIMES.parent.mkdir(parents=True, exist_ok=True)
        TIMES.write_text(json.dumps({**times, **new}, indent=1, sort_keys=True))
    except OSError as exc:  # only an ordering hint: never fail the run for it
        print(f"run-molecule: could not keep the scenario times in {TIMES}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="*", help="scenario names (default: every molecule/*/molecule.yml)")
    parser.add_argument("--jobs", type=int, default=1, choices=range(1, 5), metavar="N",
                        help="run N scenarios at a time (1 to 4; default 1)")
    parser.add_argument("--images-only", action="store_true",
                        help="make or find the images and the site repository the scenarios need, run none")
    args = parser.parse_args(argv)

    known = scenarios()
    wanted = args.scenario or known
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        print(f"run-molecule: no such scenario: {', '.join(unknown)} (known: {', '.join(known) or 'none'})",
              file=sys.stderr)
        return 2
    if not wanted:
        print("run-molecule: no scenario in molecule/*/molecule.yml", file=sys.stderr)
        return 1

    print(f"run-molecule: base image {ensure_base_image()}", flush=True)
    if args.images_only:
        for name in wanted:
            scenario_environment(name)
        print(f"run-molecule: images ready for {len(wanted)} scenario(s)", flush=True)
        return 0
    molecule = BIN / "molecule"
    if not molecule.exists():
        print(f"run-molecule: {molecule} is missing; run 'make venv'", file=sys.stderr)
        return 1

    times = load_times()
    # longest first (by the last run), so that parallel jobs end close together
    order = sorted(wanted, key=lambda name: -times.get(name, 0.0))
    # made (or found cached) one after the other before any scenario starts: two jobs never build the same image
    prepared = {name: scenario_environment(name) for name in order}
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def run(name: str) -> tuple[str, int, float]:
        say(f"run-molecule: == molecule test -s {name}\n")
        start = time.monotonic()
        env = environment()
        env.update(prepared[name])
        if args.jobs == 1:
            code = subprocess.run([str(molecule), "test", "-s", name], cwd=ROOT, env=env, check=False).returncode
        else:
            proc = subprocess.Popen([str(molecule), "test", "-s", name], cwd=ROOT, env=env, text=True,
                                    errors="replace", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
            assert proc.stdout is not None
            for line in proc.stdout:
                say(f"[{name}] {line}")
            code = proc.wait()
        seconds = time.monotonic() - start
        say(f"run-molecule: {name}: {'passed' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s\n")
        return name, code, seconds

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run, order))
    save_times(times, {name: seconds for name, code, seconds in results if code == 0})

    failed = [name for name, code, _seconds in results if code != 0]
    for name, code, seconds in results:
        print(f"run-molecule: {name}: {'passed' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s")
    if failed:
        print(f"run-molecule: {len(failed)} of {len(results)} scenario(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
