"""``vcluster-lab``: bring a site up on this machine, use it, take it down.

Every command works on one lab home (``--home``, ``$VCLUSTER_LAB_HOME``, default
``<repo>/.lab``). ``up`` starts the control plane in the background and makes nodes
through its admin API, so they are powered on by PCS like real nodes; the other commands
talk to the same API or, for what the lab itself made (containers, networks, images), to
podman by label.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from . import daemon, home as labhome, images, preflight, site_services
from .client import LabClient, LabError
from .nodes.base import DriverError
from .nodes.podman import NODE_TLS_DIR
from .inventory_data import MGMT_ENV, MGMT_NETWORK, SITE_NETWORKS, mgmt_gateway, mgmt_network
from .ssh import ensure_key, key_path, wait_for_login
from .tokens import Credentials

FACES = ("openchami", "csm")
PLUGINS = {"openchami": "hpc.vcluster.openchami", "csm": "hpc.vcluster.csm"}


def say(msg: str) -> None:
    print(msg, flush=True)


def _home(args) -> Path:
    return labhome.lab_home(args.home)


def _client(home: Path, port: int | None = None) -> LabClient:
    port = labhome.resolve_port(home, port)
    if not daemon.running_pid(home):
        raise LabError(f"no lab server runs for {home}: start one with 'vcluster-lab up'")
    return LabClient(home, port)


def token_variable(site_name: str) -> str:
    """``<SITE_NAME>_ACCESS_TOKEN`` as the ochami CLI names it (``lab`` -> ``LAB_ACCESS_TOKEN``)."""
    return re.sub(r"[-\s]", "_", site_name).upper() + "_ACCESS_TOKEN"


# ---------------------------------------------------------------------------- up
def cmd_up(args) -> int:
    started = time.monotonic()
    home = _home(args)
    prefix = labhome.resolve_prefix(home)
    driver = "records" if args.records else "podman"
    port = labhome.resolve_port(home, args.port)
    state = labhome.read_state(home)
    try:
        mgmt = labhome.resolve_mgmt_network(home, args.mgmt_network)
    except ValueError as exc:
        raise LabError(f"--mgmt-network: {exc}") from None
    site_name = args.site_name or labhome.resolve_site_name(home)
    if daemon.running_pid(home) and (state.get("port") != port or state.get("driver") != driver
                                     or state.get("mgmt_network", mgmt) != mgmt):
        raise LabError(f"the lab in {home} already runs ({state.get('driver')} driver, port "
                       f"{state.get('port')}, network {state.get('mgmt_network', mgmt)}): "
                       "'vcluster-lab down' first to change them")
    if driver == "podman":
        preflight.run(prefix)  # before anything is made: one line naming what is missing
    key = ensure_key(home)
    labhome.write_state(home, port=port, driver=driver, prefix=prefix, mgmt_network=mgmt, site_name=site_name)
    # what this process makes on the management network (site services) takes the lab's range
    os.environ[MGMT_ENV] = str(mgmt)
    # The base image (a minute of debootstrap when the cache is cold) and the server's
    # start-up overlap; nodes are made once both are ready.
    with ThreadPoolExecutor(1) as pool:
        base = pool.submit(images.ensure_base, prefix, say) if driver == "podman" else None
        pid = daemon.start(home, port, driver, prefix, mgmt_network=mgmt)
        if base:
            base.result()
    say(f"control plane: {daemon.server_url(port)} (pid {pid}, {driver} driver, log "
        f"{home / daemon.LOG_FILE})")
    # Site services (package repository, directory, DNS...) start while the nodes boot.
    with ThreadPoolExecutor(1) as pool:
        site = pool.submit(site_services.start, home, prefix, args.site_services, say) \
            if driver == "podman" else None
        try:
            client = LabClient(home, port)
            reply = client.call("POST", "/lab/v1/nodes",
                                {"compute": args.nodes, "service": args.service_nodes,
                                 "power_on": True, "wait": True, "timeout": args.timeout},
                                timeout=args.timeout + 60)
        finally:
            if site:
                site.result()
    failed = [t for t in (reply.get("transition") or {}).get("tasks", [])
              if t.get("taskStatus") == "failed"]
    if failed:
        raise LabError("power on failed: " + "; ".join(
            f"{t['xname']}: {t.get('error') or t.get('taskStatusDescription')}" for t in failed))
    wanted = set(reply.get("nodes") or [])
    nodes = [n for n in client.call("GET", "/lab/v1/nodes")["nodes"] if n["xname"] in wanted]
    running = [n for n in nodes if n.get("power") == "on"]
    if driver == "podman" and running:
        say(f"waiting for {len(running)} node(s) to answer SSH")
        wait_for_login(key, {n["xname"]: n["ip"] for n in running}, timeout=args.timeout)
        nodes = [n for n in client.call("GET", "/lab/v1/nodes")["nodes"] if n["xname"] in wanted]
    _print_nodes(nodes)
    say(f"lab up in {time.monotonic() - started:.1f} s: {len(nodes)} node(s); "
        f"eval \"$(vcluster-lab env --face {args.face})\" to use it")
    return 0


def _print_nodes(nodes: list[dict]) -> None:
    if not nodes:
        return
    cols = ("xname", "nid", "hostname", "role", "ip", "power", "state", "boot_image")
    widths = {c: max(len(c), *(len(str(n.get(c, ""))) for n in nodes)) for c in cols}
    say("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for n in nodes:
        say("  ".join(str(n.get(c, "")).ljust(widths[c]) for c in cols))


# ---------------------------------------------------------------------------- status, down
def cmd_status(args) -> int:
    home = _home(args)
    state = labhome.read_state(home)
    prefix = labhome.resolve_prefix(home)
    pid = daemon.running_pid(home)
    port = labhome.resolve_port(home)
    if pid:
        client = LabClient(home, port, timeout=10)
        status = client.call("GET", "/lab/v1/status")
        say(f"server: {client.url} pid {pid} ({status.get('driver')} driver, up "
            f"{status.get('uptime_s')} s, home {home})")
        say("counts: " + ", ".join(f"{k} {v}" for k, v in (status.get("counts") or {}).items()))
        faults = {k: v for k, v in (status.get("faults") or {}).items()
                  if v and k in ("latency_ms", "jitter_ms", "error_rate", "dead_nodes")}
        if (status.get("faults") or {}).get("token_lifetime", 3600) != 3600:
            faults["token_lifetime"] = status["faults"]["token_lifetime"]
        if faults:
            say(f"faults: {json.dumps(faults, sort_keys=True)}")
        _print_nodes(client.call("GET", "/lab/v1/nodes")["nodes"])
    else:
        say(f"server: not running (home {home}, last driver {state.get('driver', '-')})")
    if state.get("driver", "podman") == "podman":
        from .nodes.podman import PodmanDriver
        rows = PodmanDriver(home, prefix=prefix).nodes()
        say(f"node containers ({prefix}-*): {len(rows)}")
        for xname, row in sorted(rows.items()):
            say(f"  {row['container']:28} {row['state']:4} {row['ip']:15} {row['image']}")
        sites = site_services.status_lines(prefix)
        say(f"site services: {len(sites)}")
        for line in sites:
            say(line)
    for row in images.lab_images(prefix):
        say(f"image: {', '.join(row.get('Names') or [row['Id'][:12]])}")
    return 0


def cmd_down(args) -> int:
    home = _home(args)
    prefix = labhome.resolve_prefix(home)
    pid = daemon.stop(home)
    say(f"server: stopped (pid {pid})" if pid else "server: was not running")
    from .nodes.podman import remove_lab
    removed = remove_lab(prefix, keep_images=args.keep_images)
    for kind in ("containers", "networks", "images"):
        if removed[kind]:
            say(f"removed {kind}: {', '.join(removed[kind])}")
    for item in removed["kept"]:
        say(f"kept {item}")
    # The store describes nodes that no longer exist: the next 'up' starts afresh.
    for name in ("lab.db", "lab.db-wal", "lab.db-shm"):
        (home / name).unlink(missing_ok=True)
    say(f"lab {prefix} down; {home} keeps credentials, CA and SSH key; the root file "
        f"system, site-service images and site repository stay cached ({images.cache_dir()}, "
        f"images {images.CACHE_PREFIX})")
    return 0


# ---------------------------------------------------------------------------- seed, fault
def cmd_seed(args) -> int:
    home = _home(args)
    started = time.monotonic()
    reply = _client(home).call("POST", "/lab/v1/seed", {"nodes": args.nodes, "groups": args.groups,
                                                        "partitions": args.partitions})
    summary = ", ".join(f"{k} {v}" for k, v in (reply or {}).items() if not isinstance(v, (list, dict)))
    say(f"seeded in {time.monotonic() - started:.1f} s: {summary}")
    return 0


def cmd_fault(args) -> int:
    home = _home(args)
    client = _client(home)
    if args.clear:
        client.call("DELETE", "/lab/v1/faults")
    body: dict = {}
    for key, value in (("latency_ms", args.latency), ("jitter_ms", args.jitter),
                       ("error_rate", args.error_rate), ("token_lifetime", args.token_ttl)):
        if value is not None:
            body[key] = value
    if body:
        client.call("PUT", "/lab/v1/faults", body)
    for xname in args.kill or []:
        client.call("POST", f"/lab/v1/nodes/{xname}/kill")
    for xname in args.revive or []:
        client.call("POST", f"/lab/v1/nodes/{xname}/revive")
    say(json.dumps(client.call("GET", "/lab/v1/faults"), indent=2, sort_keys=True))
    return 0


# ---------------------------------------------------------------------------- env, inventory
def lab_env(home: Path, face: str) -> dict[str, str]:
    """What a client of the lab needs in its environment (secrets included: that is the point)."""
    port = labhome.resolve_port(home)
    client = _client(home, port)
    env = {"VCLUSTER_SITE_KIND": face, "VCLUSTER_API_URL": client.url,
           "VCLUSTER_SITE_NAME": labhome.resolve_site_name(home), "VCLUSTER_CA_PATH": str(daemon.ca_path(home)),
           "VCLUSTER_LAB_SSH_KEY": str(key_path(home))}
    if face == "openchami":
        # where the ochami CLI and the modules look for the site's token: <SITE_NAME>_ACCESS_TOKEN
        env[token_variable(env["VCLUSTER_SITE_NAME"])] = client.token()
        # the site's S3 store with static keys, as MinIO on OpenCHAMI (CSM's STS needs none)
        s3 = Credentials(home).s3()
        env.update({"VCLUSTER_S3_URL": client.url + "/s3", "VCLUSTER_S3_ACCESS_KEY": s3["access_key"],
                    "VCLUSTER_S3_SECRET_KEY": s3["secret_key"]})
    else:
        env["VCLUSTER_CLIENT_ID"], env["VCLUSTER_CLIENT_SECRET"] = client.credentials("csm")
        # IMS jobs need a public key record: the site admin's key, here the lab's
        env["VCLUSTER_IMS_PUBLIC_KEY"] = Path(str(key_path(home)) + ".pub").read_text().strip()
    if labhome.read_state(home).get("driver", "podman") == "podman":
        env.update(site_services.env(home, labhome.resolve_prefix(home)))
        env.update(firecrest_site_env(home, port, env.get("VCLUSTER_LAB_REPO_URL", "")))
    return env


def firecrest_site_env(home: Path, port: int, repo_url: str) -> dict[str, str]:
    """The firecrest vService's site settings (what roles/firecrest reads from VCLUSTER_FIRECREST_*): the
    site IdP (the lab's Keycloak realm, which the nodes reach on the management gateway), the site
    repository, and the service's TLS files that the lab's PKI puts on every node."""
    idp = f"http://{mgmt_gateway(mgmt_network(labhome.resolve_mgmt_network(home)))}:{port}" \
          "/keycloak/realms/shasta/protocol/openid-connect"
    env = {"VCLUSTER_FIRECREST_JWKS_URL": idp + "/certs", "VCLUSTER_FIRECREST_TOKEN_URL": idp + "/token",
           "VCLUSTER_FIRECREST_TLS_CERT_PATH": f"{NODE_TLS_DIR}/host.pem",
           "VCLUSTER_FIRECREST_TLS_KEY_PATH": f"{NODE_TLS_DIR}/host-key.pem",
           "VCLUSTER_FIRECREST_TLS_CA_PATH": f"{NODE_TLS_DIR}/ca.pem"}
    if repo_url:
        env["VCLUSTER_FIRECREST_SITE_REPOSITORY_URL"] = repo_url.rstrip("/")
    return env


def cmd_env(args) -> int:
    env = lab_env(_home(args), args.face)
    if args.format == "json":
        print(json.dumps(env, indent=2))
    else:
        # Switching faces in one shell: the other face's credentials would win otherwise
        # (a LAB_ACCESS_TOKEN comes before client credentials in the token order).
        stale = ["VCLUSTER_CLIENT_ID", "VCLUSTER_CLIENT_SECRET", "VCLUSTER_IMS_PUBLIC_KEY"] if args.face == "openchami" \
            else [token_variable(env["VCLUSTER_SITE_NAME"]), "VCLUSTER_S3_URL", "VCLUSTER_S3_ACCESS_KEY",
                  "VCLUSTER_S3_SECRET_KEY"]
        print(f"unset {' '.join(stale)}")
        for key, value in env.items():
            print(f"export {key}={shlex.quote(value)}")
    return 0


def inventory_source(home: Path, face: str) -> dict:
    port = labhome.resolve_port(home)
    key = key_path(home)
    # compose values are Jinja expressions: literal strings are quoted inside.
    return {"plugin": PLUGINS[face], "api_url": daemon.server_url(port), "site_name": labhome.resolve_site_name(home),
            "ca_path": str(daemon.ca_path(home)),
            "compose": {"ansible_user": "'root'", "ansible_ssh_private_key_file": f"'{key}'",
                        "ansible_ssh_common_args": "'-o StrictHostKeyChecking=no "
                                                   "-o UserKnownHostsFile=/dev/null'"}}


def cmd_inventory(args) -> int:
    source = inventory_source(_home(args), args.face)
    print(f"# {args.face} inventory source for the lab (save as lab.{args.face}.yml); "
          f"credentials come from: eval \"$(vcluster-lab env --face {args.face})\"")
    # Written by hand so the Jinja string literals stay readable ("'root'").
    for key, value in source.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for sub, expr in value.items():
                print(f"  {sub}: {json.dumps(expr)}")
        else:
            print(f"{key}: {json.dumps(value)}")
    return 0


# ---------------------------------------------------------------------------- serve, image
def cmd_serve(args) -> int:
    home = _home(args)
    prefix = labhome.resolve_prefix(home)
    port = labhome.resolve_port(home, args.port)
    from .containers import podman_env
    os.environ.update({"VCLUSTER_LAB_PREFIX": prefix, "VCLUSTER_LAB_HOME": str(home),
                       "CONTAINERS_CONF": podman_env()["CONTAINERS_CONF"]})
    # the management network: `up` passes it; a `serve` by hand takes this home's (or the NMN)
    os.environ.setdefault(MGMT_ENV, labhome.resolve_mgmt_network(home))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .server import serve
    ensure_key(home)
    labhome.write_state(home, port=port, driver=args.driver, prefix=prefix)
    serve(home, args.host, port, args.driver, tls=True)  # writes server.pid, stops on SIGTERM
    return 0


def cmd_image_base(args) -> int:
    home = _home(args)
    started = time.monotonic()
    image = images.ensure_base(labhome.resolve_prefix(home), log=say)
    say(f"{image.ref} {image.digest} ({time.monotonic() - started:.1f} s)")
    return 0


def cmd_image_build(args) -> int:
    home = _home(args)
    started = time.monotonic()
    recipe = images.load_recipe(args.recipe)
    image = images.build_recipe(recipe, name=args.name, tags=args.tag or None,
                                builder=args.builder, prefix=labhome.resolve_prefix(home),
                                base_dir=Path(args.recipe).resolve().parent, log=say)
    say(f"{image.ref} {image.digest} ({time.monotonic() - started:.1f} s)")
    for key in sorted(image.labels):
        if key.startswith(("org.openchami.image.", "io.vcluster.image.")):
            say(f"  {key}={image.labels[key]}")
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", help="lab state directory (default $VCLUSTER_LAB_HOME or <repo>/.lab)")
    parser = argparse.ArgumentParser(
        prog="vcluster-lab", description="An OpenCHAMI- and CSM-compatible site on this "
        "machine, with podman nodes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", parents=[common], help="start the control plane and make nodes")
    p.add_argument("--nodes", type=int, default=2, help="compute nodes (default 2)")
    p.add_argument("--service-nodes", type=int, default=0, help="service nodes (default 0)")
    p.add_argument("--port", type=int, help=f"HTTPS port (default {labhome.DEFAULT_PORT})")
    p.add_argument("--mgmt-network", help="management network of a second site on this machine, one of "
                   f"{', '.join(SITE_NETWORKS)} (default {MGMT_NETWORK}, the CSM NMN)")
    p.add_argument("--site-name", help=f"site name for clients' environment and inventory (default "
                   f"{labhome.DEFAULT_SITE_NAME})")
    p.add_argument("--face", choices=FACES, default="openchami", help="face named in the hint")
    p.add_argument("--records", action="store_true",
                   help="records-only driver: no containers (for seed and scale tests)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for SSH")
    p.add_argument("--site-services", default="all", metavar="NAMES",
                   help="site services to start: all (default), none, or a comma list of their "
                        "names (see docs/lab.md)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("status", parents=[common], help="server, nodes and images of the lab")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("down", parents=[common],
                       help="stop the server and remove every container, network and image the lab made")
    p.add_argument("--keep-images", action="store_true", help="keep the lab's images")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("seed", parents=[common], help="add a large records-only site")
    p.add_argument("--nodes", type=int, default=10000)
    p.add_argument("--groups", type=int, default=40)
    p.add_argument("--partitions", type=int, default=0)
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("env", parents=[common], help="shell exports for clients of the lab")
    p.add_argument("--face", choices=FACES, default="openchami")
    p.add_argument("--format", choices=("sh", "json"), default="sh")
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("inventory", parents=[common], help="an inventory source file for the lab")
    p.add_argument("--face", choices=FACES, default="openchami")
    p.set_defaults(func=cmd_inventory)

    p = sub.add_parser("fault", parents=[common], help="inject or clear faults")
    p.add_argument("--latency", type=int, metavar="MS", help="added latency per request")
    p.add_argument("--jitter", type=int, metavar="MS", help="random extra latency, up to MS")
    p.add_argument("--error-rate", type=float, metavar="F", help="fraction of requests answered 500/503")
    p.add_argument("--token-ttl", type=int, metavar="S", help="lifetime of new tokens")
    p.add_argument("--kill", action="append", metavar="XNAME", help="the node dies")
    p.add_argument("--revive", action="append", metavar="XNAME", help="a dead node may power on again")
    p.add_argument("--clear", action="store_true", help="clear every fault first")
    p.set_defaults(func=cmd_fault)

    p = sub.add_parser("serve", parents=[common], help="run the control plane in the foreground")
    p.add_argument("--driver", choices=("podman", "records"), default="podman")
    p.add_argument("--port", type=int)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("image", help="lab images")
    isub = p.add_subparsers(dest="image_command", required=True, metavar="IMAGE_COMMAND")
    q = isub.add_parser("base", parents=[common], help="make the base image (debootstrap, cached)")
    q.set_defaults(func=cmd_image_base)
    q = isub.add_parser("build", parents=[common], help="build an image-builder recipe")
    q.add_argument("recipe", help="recipe file (YAML)")
    q.add_argument("--name", help="image name (default: options.name)")
    q.add_argument("--tag", action="append", help="tag (repeatable; default: options.publish_tags)")
    q.add_argument("--builder", default=os.environ.get("USER", "vcluster-lab"),
                   help="recorded as io.vcluster.image.builder")
    q.set_defaults(func=cmd_image_build)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (DriverError, OSError, ValueError) as exc:
        print(f"vcluster-lab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
