"""The site package repository (10.252.0.2): what a site's Nexus or mirror is to its nodes.

nginx serves, read-only, the tree :mod:`vcluster_lab.site_repo` assembles in the lab's
cache: a signed apt repository of the packages the lab builds from upstream sources
(``/debian``), the source archives (``/sources/``), a Python package index
(``/simple/``) and container images for users (``/images/``).
"""
from __future__ import annotations

from ... import site_repo
from ...site_services import ServiceContext, SiteService, Volume


def _prepare(ctx: ServiceContext) -> None:
    site_repo.prepare(ctx.image.ref, ctx.log)


def _volumes(ctx: ServiceContext) -> list[Volume]:
    return [Volume(site_repo.www_dir(), "/srv/repo", "ro")]


SERVICE = SiteService(
    name="repo",
    address="10.252.0.2",
    description="site package repository: packages built from upstream sources, the sources, "
                "a Python package index, container images",
    recipe={
        "options": {"name": "vclab-site-repo", "pkg_manager": "apt"},
        # nginx serves; apt-ftparchive and gpg make and sign the apt index (site_repo.apt_repository)
        "packages": ["nginx-light", "apt-utils", "gnupg"],
        "copyfiles": [{"src": "nginx.conf", "dest": "/etc/nginx/sites-available/default"}],
        "cmds": [{"cmd": "systemctl enable nginx.service"}],
    },
    ports=(80,),
    urls={"URL": "http://{address}/",
          "APT_URL": "http://{address}/debian",
          "APT_KEY_URL": "http://{address}/debian/archive-key.asc",
          "SOURCES_URL": "http://{address}/sources/",
          "PYPI_URL": "http://{address}/simple/",
          "IMAGES_URL": "http://{address}/images/"},
    prepare=_prepare,
    volumes=_volumes,
)
