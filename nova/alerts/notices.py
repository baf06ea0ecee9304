"""What an alert says, and who may be told.

A :class:`Notice` has a deterministic ``alert_id``: the same happening (one budget's soft
limit on one UTC day, one provider going down in one announcement, one checkpoint overdue,
one spike window) always gets the same id, whichever gateway sees it and however often it is
read again. Delivery ids are ``<alert_id>><webhook id>``, which is what the delivery log
remembers, so a record read twice after a restart is never delivered twice.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, get_args

AlertKind = Literal[
    "provider.down",
    "provider.recovered",
    "budget.soft",
    "budget.hard",
    "error_rate",
    "latency",
    "checkpoint.waiting",
    "report",
]
ALERT_KINDS: Final[tuple[AlertKind, ...]] = get_args(AlertKind)
SYSTEM: Final = "system"  # the identity of alerts about no identity (providers, reports)


@dataclass(frozen=True, slots=True)
class Notice:
    alert_id: str
    kind: AlertKind
    identity: str  # whose: an identity id, or SYSTEM
    subject: str  # the provider, budget, checkpoint or identity it is about
    message: str  # one line a person reads
    severity: Literal["info", "warning", "high"]
    ts: int  # epoch ms of what happened
    details: dict[str, Any] = field(default_factory=dict)

    def delivery_id(self, webhook_id: str) -> str:
        return f"{self.alert_id}>{webhook_id}"


class Destination(Protocol):
    """What deciding whether a destination wants a notice needs (a ``WebhookEntity`` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def scope(self) -> Literal["identity", "global"]: ...
    @property
    def alerts(self) -> Collection[str]: ...


def wants(destination: Destination, notice: Notice) -> bool:
    """Global destinations (an operator's) hear every identity's alerts of their kinds; an
    identity's hear its own, and the alerts about no identity (providers) everyone shares."""
    if notice.kind not in destination.alerts:
        return False
    if notice.kind == "report":
        return destination.scope == "global"  # the report covers every identity
    return (destination.scope == "global" or notice.identity == SYSTEM
            or destination.owner == notice.identity)
