"""The web console the gateway serves at ``/console``: a static page, its script and its style.

No data is rendered on the server: the page is the same for everyone and holds nothing until
its script has signed in (an API key exchanged for a token kept in memory) and asked the
gateway's API, with the rules of each route. So the assets need no authentication, and the
security of the page rests on three things, checked by the browser tests:

- a strict Content-Security-Policy (:data:`CONTENT_SECURITY_POLICY`): scripts and styles only
  from the gateway itself, no inline code, no plugins, no framing, connections only back to
  the gateway, and Trusted Types required with no policy allowed, so no string can ever be
  parsed as HTML by the page;
- the script writes data as text only (``static/console.js`` says how);
- the token never leaves memory: not in a cookie (another site could make the browser send
  it), not in storage, not in a URL.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Final

CONTENT_SECURITY_POLICY: Final = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",  # the API and /api/v2/ws on this origin (ws: included, CSP 3)
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
))

SECURITY_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cache-Control": "no-store",
}

ASSETS: Final[dict[str, str]] = {
    "console.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}


@cache
def asset(name: str) -> bytes:
    """One of :data:`ASSETS`, read once from the package."""
    if name not in ASSETS:
        raise KeyError(name)
    return files(__package__).joinpath("static", name).read_bytes()
