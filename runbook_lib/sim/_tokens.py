"""Access tokens and device codes shared between the sign-in and Graph stand-ins.

The sign-in server issues tokens, the Graph server checks them; this store is the
only link between the two, like the signature check that links Entra ID and Graph.
Tokens are opaque random strings (real ones are JWTs, but a client must never read
an access token, so an opaque one keeps clients honest). Every token is registered
with the :class:`~._log.Redactor` the moment it exists.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Literal

from ._log import Redactor

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "DEVICE_CODE_LIFETIME",
    "DeviceCode",
    "IssuedToken",
    "TokenCheck",
    "TokenStore",
]

ACCESS_TOKEN_LIFETIME = 3599
DEVICE_CODE_LIFETIME = 900

TokenKind = Literal["app", "user"]
TokenCheck = Literal["ok", "missing", "unknown", "expired", "audience"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What the sandbox remembers about an access token it handed out.

    ``roles`` are the application permissions of an app-only token (the ``roles``
    claim); ``scopes`` are the requested scopes, and for a user token the delegated
    permission names it carries (the ``scp`` claim).
    """

    kind: TokenKind
    client_id: str
    audience: str
    scopes: tuple[str, ...]
    expires_at: float
    subject: str
    roles: tuple[str, ...] = ()


@dataclass(slots=True)
class DeviceCode:
    """A pending device-code sign-in.

    ``polls`` counts token requests: the first is answered ``authorization_pending``
    (so clients really run their polling loop), after which the sandbox treats the
    user as having approved.
    """

    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    polls: int = 0
    redeemed: bool = False


@dataclass(slots=True)
class _RefreshGrant:
    client_id: str
    scopes: tuple[str, ...]
    subject: str


@dataclass
class TokenStore:
    """Thread-safe registry of access tokens, refresh tokens and device codes."""

    redactor: Redactor
    _tokens: dict[str, IssuedToken] = field(default_factory=dict)
    _refresh: dict[str, _RefreshGrant] = field(default_factory=dict)
    _device_codes: dict[str, DeviceCode] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_access_token(
        self,
        *,
        kind: TokenKind,
        client_id: str,
        audience: str,
        scopes: tuple[str, ...],
        subject: str,
        lifetime: int = ACCESS_TOKEN_LIFETIME,
        roles: tuple[str, ...] = (),
    ) -> str:
        """Create, remember and return a new opaque access token."""
        token = secrets.token_urlsafe(48)
        self.redactor.add(token)
        issued = IssuedToken(
            kind, client_id, audience, scopes, time.time() + lifetime, subject, roles
        )
        with self._lock:
            self._tokens[token] = issued
        return token

    def issue_refresh_token(self, client_id: str, scopes: tuple[str, ...], subject: str) -> str:
        """Create and return a refresh token for a signed-in user."""
        token = secrets.token_urlsafe(64)
        self.redactor.add(token)
        with self._lock:
            self._refresh[token] = _RefreshGrant(client_id, scopes, subject)
        return token

    def redeem_refresh_token(self, token: str, client_id: str) -> _RefreshGrant | None:
        """Return the grant behind ``token`` when it belongs to ``client_id``."""
        with self._lock:
            grant = self._refresh.get(token)
        if grant is None or grant.client_id != client_id:
            return None
        return grant

    def check(self, token: str | None, audience: str) -> tuple[TokenCheck, IssuedToken | None]:
        """Classify ``token`` for a resource server whose audience is ``audience``."""
        if not token:
            return "missing", None
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            return "unknown", None
        if issued.expires_at <= time.time():
            return "expired", issued
        if issued.audience != audience:
            return "audience", issued
        return "ok", issued

    def expire_all(self) -> None:
        """Make every issued access token expired (for tests of token refresh)."""
        with self._lock:
            for token, issued in list(self._tokens.items()):
                self._tokens[token] = replace(issued, expires_at=0.0)

    def start_device_flow(
        self, client_id: str, scopes: tuple[str, ...], user_code: str
    ) -> DeviceCode:
        """Register and return a new device code for ``client_id``."""
        code = DeviceCode(
            device_code=secrets.token_urlsafe(48),
            user_code=user_code,
            client_id=client_id,
            scopes=scopes,
            expires_at=time.time() + DEVICE_CODE_LIFETIME,
        )
        self.redactor.add(code.device_code)
        with self._lock:
            self._device_codes[code.device_code] = code
        return code

    def poll_device_code(self, device_code: str) -> DeviceCode | None:
        """Count one poll of ``device_code`` and return its (updated) state."""
        with self._lock:
            code = self._device_codes.get(device_code)
            if code is not None:
                code.polls += 1
            return code

    def mark_redeemed(self, device_code: str) -> bool:
        """Mark ``device_code`` as exchanged; False when it already was."""
        with self._lock:
            code = self._device_codes.get(device_code)
            if code is None or code.redeemed:
                return False
            code.redeemed = True
            return True
