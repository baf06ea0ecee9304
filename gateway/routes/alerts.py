"""Alert destinations: ``/api/v2/alerts/webhooks``.

A destination is a URL the gateway POSTs alerts to (``gateway.alerts``), as Slack-compatible
incoming-webhook JSON or as plain JSON, with the alert kinds it wants
(``nova.alerts.notices.ALERT_KINDS``). Who may do what:

- an ``admin`` manages its identity's destinations (scope ``identity``): its own alerts, and
  those about no identity (providers);
- an ``operator`` manages global ones (scope ``global``): every identity's alerts and the
  scheduled report. Each change is an ``OPERATOR_ACTION`` audit fact written before it;
- anyone else gets 403; another identity's destination is a 403 boundary crossing with its
  ``IDENTITY_BOUNDARY`` fact and nothing of it in the answer.

The URL is checked (``nova.alerts.urls``: no private, loopback or link-local address for an
identity's destination unless ``NOVA_ALERT_PRIVATE_URLS``) and shown whole only in the answer
to its creation, with the signing secret; afterwards both stay hidden (an incoming-webhook
URL is a credential).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import Field, StringConstraints

from gateway.bodies import StrictBody
from gateway.boundary import EVERY_IDENTITY, BoundaryGuard
from gateway.deps import GuardDep, PrincipalDep, ServicesDep
from gateway.problems import problem
from nova.alerts.notices import AlertKind
from nova.alerts.urls import UrlRefused, check_url, shown
from nova.auth.tokens import Principal
from nova.domain.roles import OPERATOR
from nova.entities.models import WebhookEntity
from nova.errors import ConflictError, ForbiddenError
from nova.ids import uuid7
from nova.records import now_ms

router = APIRouter(prefix="/api/v2/alerts", tags=["alerts"])

MAX_WEBHOOKS_PER_IDENTITY: Final = 20
DEFAULT_ALERTS: Final[list[AlertKind]] = [
    "provider.down", "provider.recovered", "budget.soft", "budget.hard", "error_rate",
    "latency", "checkpoint.waiting"]


class WebhookBody(StrictBody):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    format: Literal["slack", "json"] = "json"
    alerts: list[AlertKind] = Field(default_factory=lambda: list(DEFAULT_ALERTS), min_length=1,
                                    max_length=16)
    scope: Literal["identity", "global"] = "identity"


def _may_manage(principal: Principal, scope: str) -> None:
    if scope == "global" and OPERATOR not in principal.roles:
        raise ForbiddenError("global alert destinations are an operator's")
    if scope == "identity" and not principal.has_role("admin"):
        raise ForbiddenError("alert destinations of an identity are managed by its admins")


def _out(w: WebhookEntity) -> dict[str, Any]:
    return {"id": w.id, "name": w.name, "scope": w.scope, "format": w.format,
            "alerts": list(w.alerts), "url": shown(w.url), "owner": w.owner,
            "created_at": w.created_at}


@router.post("/webhooks", status_code=201, responses={401: {}, 403: {}, 409: {}, 422: {},
                                                      503: {}})
async def create_webhook(body: WebhookBody, principal: PrincipalDep, guard: GuardDep,
                         services: ServicesDep) -> Any:
    """A destination for alerts; the answer is the only one that shows its URL and secret."""
    _may_manage(principal, body.scope)
    if "report" in body.alerts and body.scope != "global":
        return problem(422, "the scheduled report covers every identity: only global "
                       "destinations receive it", slug="webhook")
    allow_private = body.scope == "global" or services.settings.alert_private_urls
    try:
        await asyncio.to_thread(check_url, body.url, allow_private=allow_private)
    except UrlRefused as exc:
        return problem(422, str(exc), slug="webhook-url")
    store = guard.store
    if store.count_owned(WebhookEntity.ENTITY_TYPE, principal.identity) >= (
            MAX_WEBHOOKS_PER_IDENTITY):
        raise ConflictError(f"an identity holds at most {MAX_WEBHOOKS_PER_IDENTITY} "
                            "alert destinations")
    webhook = WebhookEntity(
        id=uuid7(), owner=principal.identity, scope=body.scope, name=body.name, url=body.url,
        format=body.format, alerts=tuple(sorted(set(body.alerts))),
        secret=secrets.token_urlsafe(32), created_at=now_ms())
    if body.scope == "global":
        await guard.operator_act(principal, "webhook", webhook.id, EVERY_IDENTITY,
                                 operation="create", change=_out(webhook))
    await guard.writer.put(webhook, create=True)
    return JSONResponse({**_out(webhook), "url": webhook.url, "secret": webhook.secret},
                        status_code=201)


@router.get("/webhooks", responses={401: {}, 403: {}})
async def list_webhooks(principal: PrincipalDep, guard: GuardDep) -> Any:
    """The destinations the caller's identity owns (an operator's include its global ones)."""
    if not principal.has_role("admin", OPERATOR):
        raise ForbiddenError("alert destinations are read by admins and operators")
    owned = guard.store.owned(WebhookEntity, principal.identity)
    return {"webhooks": [_out(w) for w in owned]}


async def _owned(principal: Principal, guard: BoundaryGuard, webhook_id: str, operation: str
                 ) -> WebhookEntity:
    webhook = await guard.owned(principal, WebhookEntity, webhook_id, operation=operation)
    _may_manage(principal, webhook.scope)
    return webhook


@router.get("/webhooks/{webhook_id}", responses={401: {}, 403: {}, 404: {}})
async def get_webhook(webhook_id: str, principal: PrincipalDep, guard: GuardDep) -> Any:
    return _out(await _owned(principal, guard, webhook_id, "read"))


@router.delete("/webhooks/{webhook_id}", status_code=204,
               responses={401: {}, 403: {}, 404: {}, 503: {}})
async def delete_webhook(webhook_id: str, principal: PrincipalDep, guard: GuardDep) -> Response:
    webhook = await _owned(principal, guard, webhook_id, "delete")
    if webhook.scope == "global":
        await guard.operator_act(principal, "webhook", webhook.id, EVERY_IDENTITY,
                                 operation="delete", change=_out(webhook))
    await guard.writer.delete(webhook)
    return Response(status_code=204)
