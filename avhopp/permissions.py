"""The role x permission matrix (docs/security.md holds the same table; a test compares them)."""

from __future__ import annotations

from typing import Any

PUBLIC = "public"
AUTHENTICATED = "authenticated"

# permission -> roles that hold it. Deny by default: a permission not listed here is held by
# nobody, and a route without a declared permission is refused (SECURITY.md Z2).
MATRIX: dict[str, frozenset[str]] = {
    AUTHENTICATED: frozenset({"admin", "coordinator", "support_worker", "board"}),
    "accounts.manage": frozenset({"admin"}),
    "audit.review": frozenset({"board"}),
    # Tracks (docs/security.md, "Tracks"): what a role may ask for at all. Whether a user sees
    # a given track's content is decided per track by avhopp.casework.policy.
    "tracks.list": frozenset({"coordinator"}),
    "tracks.intake": frozenset({"coordinator"}),
    "tracks.assign": frozenset({"coordinator"}),
    "tracks.work": frozenset({"coordinator", "support_worker"}),
    "tracks.break_glass": frozenset({"coordinator", "support_worker"}),
    # Data lifecycle (docs/security.md, "Data lifecycle").
    "privacy.erase": frozenset({"coordinator"}),
    "privacy.extract": frozenset({"coordinator"}),
    "privacy.retention": frozenset({"coordinator"}),
    "stats.view": frozenset({"coordinator", "board"}),
    # Link a relative track to a defector track on the relative's consent: coordinators (as
    # the ones who assign), support workers only on both tracks' teams (decided per track).
    "tracks.link": frozenset({"coordinator", "support_worker"}),
}

ROLES = ("admin", "coordinator", "support_worker", "board")


def role_has(role: str | None, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    return role is not None and role in MATRIX.get(permission, frozenset())


def requires(permission: str) -> Any:
    """Declare the permission a view needs; the request gate in avhopp.security enforces it."""
    if permission != PUBLIC and permission not in MATRIX:
        raise ValueError(f"unknown permission {permission!r}")

    def decorate(view: Any) -> Any:
        view.permission = permission
        return view

    return decorate


def permission_of(view: Any) -> str | None:
    return getattr(view, "permission", None)
