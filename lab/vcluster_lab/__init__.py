"""vcluster-lab: an OpenCHAMI- and CSM-compatible site on one machine, with podman nodes."""

__version__ = "0.1.0"
