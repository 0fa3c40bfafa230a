"""The review server's defences against other web pages in the reviewer's browser (see docs/review.md, Security).

- **Host check** (DNS rebinding): a request whose ``Host`` is not the bound address with its port, nor
  ``localhost`` / ``127.0.0.1`` / ``[::1]`` with the port, is refused with 421 and a short plain body, whatever
  the method. On a wildcard bind (``0.0.0.0``, ``::``) any IP literal with the port and this machine's host
  name are accepted too (an IP literal cannot be rebound).
- **State-changing requests** (every method but GET, HEAD, OPTIONS) need the per-server token (made with
  `secrets` at start, put in each page as ``<meta name="streamgaze-token">``, sent by review.js as the
  ``X-StreamGaze-Token`` header, compared with `hmac.compare_digest`) and an ``Origin`` (or, without one, a
  ``Referer``) of this very origin; otherwise 403.
- **Headers** on every response: ``Content-Security-Policy`` (no inline script, nothing from elsewhere, no
  framing), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``
  (``no-referrer`` would make Chromium send ``Origin: null`` on the page's own POSTs) and
  ``Cross-Origin-Resource-Policy: same-origin``.
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request

TOKEN_HEADER = "X-StreamGaze-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD = ("0.0.0.0", "::", "")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def new_token() -> str:
    return secrets.token_urlsafe(32)


def host_literal(host: str) -> str:
    """A host as it appears in a Host header or URL: an IPv6 address in brackets, lower case."""
    host = host.strip().lower()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
    except ValueError:
        return False
    return True


def split_host(value: str) -> tuple[str, int | None] | None:
    """``name[:port]`` of a Host header, lower case, IPv6 in brackets; None when it does not parse."""
    value = value.strip().lower()
    if not value or any(c.isspace() or c in "/\\@?#" for c in value):
        return None
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            return None
        name, rest = value[: close + 1], value[close + 1:]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:] if rest else None
    else:
        name, _, port = value.partition(":")
        port = port if ":" in value else None
    if port is not None:
        if not port.isdigit() or len(port) > 5:
            return None
        return name, int(port)
    return name, None


def host_allowed(value: str | None, bind_host: str, bind_port: int) -> bool:
    """Whether a Host header names this server (see the module docstring)."""
    parsed = split_host(value or "")
    if parsed is None:
        return False
    name, port = parsed
    if port is None:
        port = 80  # http's default port, as a browser writes it
    if port != bind_port:
        return False
    if name in LOOPBACK_NAMES or name == host_literal(bind_host):
        return True
    if bind_host.strip() in WILDCARD:
        return is_ip_literal(name) or name == socket.gethostname().lower()
    return False


def same_origin(source: str | None, host_header: str) -> bool:
    """Whether an Origin or Referer value is ``http://<the request's (already checked) Host>``."""
    if not source or source == "null":
        return False
    try:
        parts = urlsplit(source)
    except ValueError:
        return False
    return parts.scheme == "http" and parts.netloc.lower() == host_header.strip().lower()


def install(app: Flask, token: str) -> None:
    """Add the Host, origin and token checks and the response headers to the review app. The bound address is
    ``app.config["REVIEW_BIND"]`` (``(host, port)``, set by `make_review_server`); without it, the address the
    WSGI server reports for its socket (werkzeug's ``SERVER_NAME`` / ``SERVER_PORT``)."""
    app.config["REVIEW_TOKEN"] = token

    def refuse(code: int, message: str, *, plain: bool = False) -> Response:
        if not plain and request.path.startswith(("/api/", "/clip/")):
            resp = jsonify(error=message)
        else:
            resp = Response(message + "\n", mimetype="text/plain")
        resp.status_code = code
        return resp

    @app.before_request
    def check_request():
        bind = app.config.get("REVIEW_BIND")
        if bind is None:
            try:
                bind = (request.environ.get("SERVER_NAME", ""), int(request.environ.get("SERVER_PORT", "")))
            except ValueError:
                return refuse(421, "refused: this server does not know its own address", plain=True)
        host_header = request.headers.get("Host", "")
        if not host_allowed(host_header, *bind):
            return refuse(421, "refused: the Host header does not name this server", plain=True)
        if request.method in SAFE_METHODS:
            return None
        origin = request.headers.get("Origin")
        source = origin if origin is not None else request.headers.get("Referer")
        if not same_origin(source, host_header):
            return refuse(403, "refused: a change must come from this server's own page (Origin or Referer)")
        sent = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(sent.encode("utf-8", "replace"), token.encode("utf-8")):
            return refuse(403, "refused: missing or wrong page token; reload the page")
        return None

    @app.after_request
    def add_headers(resp: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            resp.headers[name] = value
        return resp

    @app.context_processor
    def page_token():
        return {"review_token": token}
