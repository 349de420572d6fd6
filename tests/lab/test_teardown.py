"""What a killed test run leaves behind is removed by the next one.

The integration fixtures reclaim an orphaned test lab (``nmn_claim``) with ``remove_lab``
before they start their own; when that fails, every later session on the machine fails
too. A run killed while podman was creating a node leaves a container with no labels yet
on the lab's own network: the listing by label misses it and ``podman network rm`` then
says the network is in use. ``remove_lab`` must still remove the network (and, with it,
that container), on a range no lab uses.
"""
from __future__ import annotations

from podman_helpers import leftovers, new_prefix, podman, shared_base

from vcluster_lab.containers import lab_labels
from vcluster_lab.nodes.podman import remove_lab


def test_remove_lab_takes_a_network_held_by_an_unlabelled_container():
    prefix = new_prefix()
    network, stray = f"{prefix}-vlan77", f"vcstray-{prefix}"
    base = shared_base()
    try:
        podman("network", "create", *lab_labels(prefix), "--subnet", "10.249.77.0/24", network)
        podman("run", "-d", "--name", stray, "--network", network, "--entrypoint", "/bin/sleep",
               base.ref, "infinity")
        assert podman("network", "rm", network, check=False).returncode != 0  # in use: what broke the reclaim
        removed = remove_lab(prefix)
        assert network in removed["networks"], removed
        assert not removed["kept"], removed
        assert podman("container", "exists", stray, check=False).returncode == 1
        assert not any(leftovers(prefix).values()), leftovers(prefix)
    finally:
        podman("rm", "-f", "-t", "0", "--ignore", stray, check=False)
        podman("network", "rm", "-f", network, check=False)
