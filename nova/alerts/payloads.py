"""The bodies and headers a webhook destination receives.

Two forms: ``slack`` is a Slack-compatible incoming-webhook body (``{"text": …}``, which
Slack, Mattermost, Rocket.Chat and most chat tools accept), ``json`` the notice itself. Every
request carries ``Nova-Delivery-Id`` (the same on every retry of one delivery, so a receiver
can drop a duplicate) and ``Nova-Signature: t=<unix seconds>,v1=<hex>``, an HMAC-SHA256 with
the destination's secret over ``<t>.<body>``, so a receiver can tell Nova's requests from
anyone's and refuse an old one replayed. The body holds ids and figures, never a prompt or an
answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Final, Literal

from nova.alerts.notices import Notice

Format = Literal["slack", "json"]
SIGNATURE_HEADER: Final = "Nova-Signature"
DELIVERY_HEADER: Final = "Nova-Delivery-Id"
_MARK: Final = {"info": "ℹ️", "warning": "⚠️", "high": "🚨"}  # noqa: RUF001 - Slack shows them


def body(notice: Notice, form: Format, delivery_id: str, console_url: str | None) -> bytes:
    if form == "slack":
        where = f" <{console_url}|open the console>" if console_url else ""
        text = (f"{_MARK[notice.severity]} *Nova {notice.kind}* ({notice.identity}): "
                f"{notice.message}{where}")
        payload: dict[str, Any] = {"text": text}
    else:
        payload = {
            "delivery_id": delivery_id,
            "alert_id": notice.alert_id,
            "kind": notice.kind,
            "identity": notice.identity,
            "subject": notice.subject,
            "severity": notice.severity,
            "message": notice.message,
            "ts": notice.ts,
            "details": notice.details,
            "console": console_url,
        }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, payload: bytes) -> bool:
    """What a receiver does (and the tests): the signature matches this body and secret."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if not parts.get("t", "").isdigit():
        return False
    return hmac.compare_digest(signature(secret, int(parts["t"]), payload), header)
