"""Access tokens and device codes shared between the sign-in and Graph stand-ins.

The sign-in server issues tokens, the Graph server checks them; this store is the
only link between the two, like the signature check that links Entra ID and Graph.
Access tokens are shaped like Entra's (``header.payload.signature``, base64url) and
carry the usual claims (``aud``, ``tid``, ``appid``, ``roles`` or ``scp``...), because
a client may read them as a last resort when Graph will not say what it was granted.
Their signature is random bytes, not a real signature: validity is decided only by
looking the token up here, as a resource server would check Entra's signature. Every
token is registered with the :class:`~runbook_lib.sim.plumbing._request_log.Redactor`
the moment it exists.

The store also keeps a log of successful sign-ins (:class:`SignInRecord`) so a test
can see what a client asked for, which the request log (no bodies) cannot show.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..plumbing._request_log import Redactor

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "DEVICE_CODE_LIFETIME",
    "DeviceCode",
    "IssuedToken",
    "SignInRecord",
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


@dataclass(frozen=True, slots=True)
class SignInRecord:
    """One token the sign-in stand-in handed out, as a test wants to see it.

    :param grant: the OAuth grant (``client_credentials``, ``device_code``,
        ``refresh_token``).
    :param client_id: the client that signed in.
    :param credential: how the client proved itself: ``client_secret``,
        ``certificate``, ``federated`` (workload identity) or ``public_client``.
    :param requested: the scopes the client asked for, as sent.
    :param granted: the permissions the token carries (``roles`` or ``scp``).
    """

    grant: str
    client_id: str
    credential: str
    requested: tuple[str, ...]
    granted: tuple[str, ...]
    time: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(claims: Mapping[str, Any]) -> str:
    """A token with Entra's JWT shape; the signature part is random (see the module doc)."""
    header = {"typ": "JWT", "alg": "RS256", "kid": "sandbox-unsigned"}
    parts = [_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)]
    return ".".join([*parts, _b64url(secrets.token_bytes(64))])


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
    _sign_ins: list[SignInRecord] = field(default_factory=list)
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
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Create, remember and return a new JWT-shaped access token.

        ``claims`` are added to the ones derived from the arguments (``aud``, ``appid``,
        ``sub``, times, and ``roles`` for app tokens or ``scp`` for user tokens).
        """
        now = int(time.time())
        payload: dict[str, Any] = {
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": client_id,
            "sub": subject,
            "idtyp": kind,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if kind == "app":
            payload["roles"] = list(roles)
        else:
            payload["scp"] = " ".join(scopes)
        payload.update(claims or {})
        token = _jwt(payload)
        self.redactor.add(token)
        issued = IssuedToken(kind, client_id, audience, scopes, now + lifetime, subject, roles)
        with self._lock:
            self._tokens[token] = issued
        return token

    def record_sign_in(
        self,
        grant: str,
        client_id: str,
        credential: str,
        requested: tuple[str, ...],
        granted: tuple[str, ...],
    ) -> None:
        """Remember one successful sign-in (see :class:`SignInRecord`)."""
        record = SignInRecord(grant, client_id, credential, requested, granted, time.time())
        with self._lock:
            self._sign_ins.append(record)

    def sign_ins(self) -> list[SignInRecord]:
        """A copy of the sign-in log, oldest first."""
        with self._lock:
            return list(self._sign_ins)

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
