"""Signed, short-lived tokens for the web view: a link sent by DM, then a session cookie.

Identity comes from chat: the bot sends a person a link only after their chat id
matched a configured member of staff. Tokens are HMAC-SHA256 signed with
$HALLMONITOR_WEB_SECRET (never in the config file); a link lives 10 minutes and
opens one session, which lives 8 hours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.errors import ConfigError, HallMonitorError

SECRET_ENV = "HALLMONITOR_WEB_SECRET"
LINK_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(hours=8)


class TokenError(HallMonitorError):
    """A link or session that is forged, expired or of the wrong kind."""


def web_secret() -> bytes:
    """The signing secret from the environment, or a ConfigError saying what to set."""
    value = os.environ.get(SECRET_ENV, "")
    if len(value) < 32:
        raise ConfigError(
            [
                f"the web view needs {SECRET_ENV}: set it to a random string of at least 32 characters "
                '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
            ]
        )
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Token:
    staff_id: str
    kind: str  # link / session
    expires: datetime
    nonce: str


def sign(staff_id: str, *, kind: str, now: datetime, secret: bytes) -> str:
    lifetime = LINK_LIFETIME if kind == "link" else SESSION_LIFETIME
    body = {"s": staff_id, "k": kind, "e": int((now + lifetime).timestamp()), "n": secrets.token_urlsafe(12)}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify(token: str, *, kind: str, now: datetime, secret: bytes) -> Token:
    """The token's contents if its signature, kind and expiry are good; TokenError otherwise."""
    payload, _, mac = (token or "").partition(".")
    try:
        expected = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
        if not payload or not hmac.compare_digest(expected, _unb64(mac)):
            raise TokenError("This link is not valid. Ask Hall Monitor for a new one: /hallmonitor web")
        body = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        raise TokenError("This link is not valid. Ask Hall Monitor for a new one: /hallmonitor web") from None
    if body.get("k") != kind:
        raise TokenError("This link is not valid. Ask Hall Monitor for a new one: /hallmonitor web")
    expires = datetime.fromtimestamp(int(body["e"]), tz=now.tzinfo)
    if expires <= now:
        raise TokenError("This link has expired. Ask Hall Monitor for a new one: /hallmonitor web")
    return Token(staff_id=str(body["s"]), kind=kind, expires=expires, nonce=str(body["n"]))


def login_url(base_url: str, staff_id: str, *, now: datetime, secret: bytes) -> str:
    return base_url.rstrip("/") + "/web/login?token=" + sign(staff_id, kind="link", now=now, secret=secret)
