"""The lab's site services, one module (or package) each, found by name.

A module here that defines ``SERVICE = vcluster_lab.site_services.SiteService(...)`` is a
site service: ``vcluster-lab up`` builds its image, prepares and starts it at its fixed
address on the management network; ``status`` and ``env`` list it; ``down`` removes it.
See docs/lab.md, "Site services".
"""
