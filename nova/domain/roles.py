"""The closed set of roles, shared by tokens, API keys, governance rules and checkpoints.

Kept in the domain (not in ``nova.auth``) because governance rules match on roles and must
refuse a misspelt one at construction: a deny rule for role "aprover" would otherwise never
fire, failing open without anyone noticing.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Role = Literal["member", "approver", "admin", "analyst"]

ROLES: Final[frozenset[str]] = frozenset(get_args(Role))

# Roles allowed to decide a checkpoint (always within their own identity).
DECIDER_ROLES: Final[frozenset[str]] = frozenset({"approver", "admin"})
