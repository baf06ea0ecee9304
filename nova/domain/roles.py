"""The closed set of roles, shared by tokens, API keys, governance rules and checkpoints.

Kept in the domain (not in ``nova.auth``) because governance rules match on roles and must
refuse a misspelt one at construction: a deny rule for role "aprover" would otherwise never
fire, failing open without anyone noticing.

Scope: ``member``, ``approver``, ``admin`` and ``analyst`` act within the token's identity and
nowhere else; ``admin`` is the most an identity can hold, never a key to other identities.
Platform-wide administration (budgets on other identities, spheres, providers or ``*``,
provisioning identities, every identity's metrics) is ``operator``, a role of its own so that
holding it is a deliberate act, and each change an operator makes to another identity's objects
leaves an ``OPERATOR_ACTION`` audit record (``gateway.operator``). An operator is not a decider:
deciding a held request stays with the approvers of its identity (four eyes).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Role = Literal["member", "approver", "admin", "analyst", "operator"]

ROLES: Final[frozenset[str]] = frozenset(get_args(Role))

# Roles allowed to decide a checkpoint (always within their own identity).
DECIDER_ROLES: Final[frozenset[str]] = frozenset({"approver", "admin"})

# The one role whose reach is every identity (see the module docstring).
OPERATOR: Final = "operator"
