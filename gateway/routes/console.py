"""``/console``: the web console's page and assets (``gateway.console`` says why they are
public and how the page stays safe).

Every answer carries the console's security headers, the policy among them; anything else
under ``/console/`` is a 404 problem, like any unknown path.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from gateway.console import ASSETS, SECURITY_HEADERS, asset
from nova.errors import NotFoundError

router = APIRouter(tags=["console"], include_in_schema=False)


def _serve(name: str) -> Response:
    return Response(asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)


@router.get("/console")
async def console_page() -> Response:
    return _serve("console.html")


@router.get("/console/")
async def console_slash() -> RedirectResponse:
    return RedirectResponse("/console", status_code=308, headers=SECURITY_HEADERS)


@router.get("/console/{name}")
async def console_asset(name: str) -> Response:
    if name not in ASSETS or name == "console.html":
        raise NotFoundError(f"no console asset {name[:64]}")
    return _serve(name)
