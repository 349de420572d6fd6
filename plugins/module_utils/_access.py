# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which labels an operator may manage, checked before any change.

Two sources, as Manta (csm-rs ``jwt_ops.rs``) and AWX job templates provide them:

* ``rbac_from_token``: the labels are the token's Keycloak realm roles
  (``realm_access.roles``; tokens without it: a top-level ``roles`` claim). ``pa_admin``
  (Manta's admin role) or ``admin`` (OpenCHAMI's) means every label. The roles Keycloak
  gives every user (``offline_access``, ``uma_authorization``, ``default-roles-*``) are
  not labels.
* ``allowed_labels``: a configured allow-list (for example set by an AWX job template).

When both are given an action must pass both. With neither, nothing is restricted.
Nodes named directly (``nodes:``) must each be a member of an allowed label, as Manta's
``validate_user_group_members_access`` requires.
"""
from __future__ import annotations


from ansible_collections.hpc.vcluster.plugins.module_utils._labels import labels_of
from ansible_collections.hpc.vcluster.plugins.module_utils._site import SiteError, nonempty_env_fallback

ADMIN_ROLES = frozenset(("pa_admin", "admin"))
IGNORED_ROLES = frozenset(("offline_access", "uma_authorization"))
IGNORED_ROLE_PREFIXES = ("default-roles-",)


class AccessDenied(SiteError):
    """The operator may not act on a label or a node; nothing was changed."""


def access_argument_spec():
    return dict(
        allowed_labels=dict(type="list", elements="str", fallback=(nonempty_env_fallback, ["VCLUSTER_ALLOWED_LABELS"])),
        rbac_from_token=dict(type="bool", fallback=(nonempty_env_fallback, ["VCLUSTER_RBAC_FROM_TOKEN"])),
    )


def token_roles(claims):
    """(labels, is_admin) from a token's claims."""
    roles = None
    realm = claims.get("realm_access")
    if isinstance(realm, dict) and isinstance(realm.get("roles"), list):
        roles = realm["roles"]
    elif isinstance(claims.get("roles"), list):
        roles = claims["roles"]
    roles = [str(r) for r in roles or []]
    admin = any(r in ADMIN_ROLES for r in roles)
    labels = set(r.lower() for r in roles
                 if r not in ADMIN_ROLES and r not in IGNORED_ROLES and not r.startswith(IGNORED_ROLE_PREFIXES))
    return labels, admin


class AccessPolicy(object):
    """The labels an operator may manage: ``None`` = any."""

    def __init__(self, allow_list=None, token_labels=None, token_admin=False, token_origin=None):
        self.allow_list = set(name.lower() for name in allow_list) if allow_list else None
        self.token_labels = None if token_labels is None else set(token_labels)
        self.token_admin = token_admin
        self.token_origin = token_origin

    @classmethod
    def from_params(cls, params, token_source=None):
        allow_list = [name.strip() for name in (params.get("allowed_labels") or []) if name and name.strip()]
        if not params.get("rbac_from_token"):
            return cls(allow_list or None)
        if token_source is None:
            raise AccessDenied("rbac_from_token is set but no token is configured: the labels an operator may "
                               "manage come from the token's realm roles")
        claims = token_source.claims()
        if not claims:
            raise AccessDenied("rbac_from_token is set but the token (%s) is not a JWT with claims; "
                               "refusing to act without knowing the operator's labels" % token_source.origin)
        labels, admin = token_roles(claims)
        who = claims.get("preferred_username") or claims.get("sub") or "the operator"
        return cls(allow_list or None, token_labels=None if admin else labels, token_admin=admin,
                   token_origin="the realm roles of %s" % who)

    @property
    def restricted(self):
        return self.allow_list is not None or self.token_labels is not None

    def allowed(self):
        """The allowed labels (a set), or None when every label is allowed."""
        if self.allow_list is None and self.token_labels is None:
            return None
        if self.allow_list is None:
            return set(self.token_labels)
        if self.token_labels is None:
            return set(self.allow_list)
        return self.allow_list & self.token_labels

    def allows(self, label):
        allowed = self.allowed()
        return allowed is None or label.lower() in allowed

    def describe(self):
        allowed = self.allowed()
        if allowed is None:
            return "any label"
        sources = []
        if self.token_labels is not None:
            sources.append(self.token_origin or "token roles")
        if self.allow_list is not None:
            sources.append("allowed_labels")
        return "%s (from %s)" % (", ".join(sorted(allowed)) or "no label", " and ".join(sources))

    def check_labels(self, labels):
        """Raise AccessDenied unless every label is allowed."""
        denied = sorted(set(name for name in labels if not self.allows(name)))
        if denied:
            raise AccessDenied("access denied: the operator may not manage label%s %s; allowed: %s. Nothing was changed."
                               % ("s" if len(denied) > 1 else "", ", ".join(denied), self.describe()))

    def check_nodes(self, smd, xnames):
        """Raise AccessDenied unless every node is a member of an allowed label."""
        allowed = self.allowed()
        if allowed is None or not xnames:
            return
        memberships = labels_of(smd, xnames)
        denied = sorted(x for x in set(xnames) if not (memberships.get(x, set()) & allowed))
        if denied:
            raise AccessDenied("access denied: node%s %s %s in no label the operator may manage; allowed: %s. "
                               "Nothing was changed." % ("s" if len(denied) > 1 else "", ", ".join(denied[:20])
                                                         + (" ..." if len(denied) > 20 else ""),
                                                         "are" if len(denied) > 1 else "is", self.describe()))
