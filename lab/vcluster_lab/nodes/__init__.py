"""Node drivers: what happens to a node when the control plane powers it, boots it or puts it on a VLAN."""
