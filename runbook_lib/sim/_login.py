"""The Entra ID sign-in stand-in (``login.microsoftonline.com``).

Just enough of the v2.0 endpoints for msal and azure-identity to sign in against it
unchanged: OpenID discovery, client credentials (app-only, with a client secret) and
the device code flow (an admin at a notebook). Errors carry Entra's JSON shape and
its AADSTS codes, because those codes are what admins search for.

The device code flow approves itself: the first token poll answers
``authorization_pending`` (so the client's polling loop really runs), the next one
succeeds as the sandbox admin.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import time
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ._shapes import GRAPH_APP_ID, GRAPH_RESOURCE
from ._state import TenantState, utc_now
from ._tokens import ACCESS_TOKEN_LIFETIME, DEVICE_CODE_LIFETIME

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["LoginApp"]

_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_logger = logging.getLogger("runbook_lib.sim")


class _AadError(Exception):
    """An OAuth error as Entra formats it (status, error, AADSTS code, text)."""

    def __init__(self, status: int, error: str, aadsts: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.text = text


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body),
        status=status,
        content_type="application/json; charset=utf-8",
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


def _resource_of(scope: str) -> str | None:
    """The resource a scope belongs to: bare names are Graph's, as in Entra."""
    if scope in _OIDC_SCOPES:
        return None
    if "://" in scope or scope.startswith(GRAPH_APP_ID):
        resource, _, _ = scope.rpartition("/")
        return (
            GRAPH_RESOURCE if resource.rstrip("/") in (GRAPH_RESOURCE, GRAPH_APP_ID) else resource
        )
    return GRAPH_RESOURCE


class LoginApp:
    """WSGI app answering like the Entra ID v2.0 endpoints for one tenant.

    ``origin`` (``https://127.0.0.1:<port>``) must be set once the server is bound,
    since the discovery document points clients back at it.
    """

    def __init__(self, state: TenantState) -> None:
        self.state = state
        self.origin = ""
        self.graph_host = "graph.microsoft.com"
        self.url_map = Map(
            [
                Rule(
                    "/<tenant>/v2.0/.well-known/openid-configuration",
                    methods=["GET"],
                    endpoint=self.openid_configuration,
                ),
                Rule("/<tenant>/oauth2/v2.0/token", methods=["POST"], endpoint=self.token),
                Rule(
                    "/<tenant>/oauth2/v2.0/devicecode", methods=["POST"], endpoint=self.device_code
                ),
                Rule("/<tenant>/discovery/v2.0/keys", methods=["GET"], endpoint=self.keys),
                Rule("/<tenant>/oauth2/v2.0/authorize", methods=["GET"], endpoint=self.authorize),
                Rule("/devicelogin", methods=["GET"], endpoint=self.device_login_page),
            ],
            strict_slashes=False,
            merge_slashes=False,
        )

    # -- helpers --------------------------------------------------------------------

    def _error(self, error: _AadError) -> Response:
        trace_id = self.state.ids.uuid("login-requests")
        correlation_id = self.state.ids.uuid("login-requests")
        timestamp = utc_now().strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{error.aadsts}: {error.text} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {timestamp}"
        )
        body = {
            "error": error.error,
            "error_description": self.state.redactor.redact(description),
            "error_codes": [error.aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.origin}/error?code={error.aadsts}",
        }
        return _json(body, status=error.status)

    def _check_tenant(self, tenant: str) -> None:
        if tenant.lower() not in (self.state.tenant_id, self.state.tenant_domain):
            raise _AadError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant.",
            )

    def _check_client(self, client_id: str) -> None:
        if not client_id:
            raise _AadError(
                400, "invalid_request", 900144,
                "The request body must contain the following parameter: 'client_id'.",
            )  # fmt: skip
        if client_id.lower() != self.state.client_id:
            raise _AadError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.state.tenant_domain}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant.",
            )

    def _client_credentials_from(self, request: Request) -> tuple[str, str | None]:
        """client_id / client_secret from the form or from HTTP Basic auth."""
        client_id = request.form.get("client_id", "")
        secret = request.form.get("client_secret")
        scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _AadError(
                    401, "invalid_client", 7000216, "The client credentials are malformed."
                ) from None
            basic_id, _, basic_secret = decoded.partition(":")
            client_id = client_id or basic_id
            secret = secret if secret is not None else basic_secret
        return client_id, secret

    def _scopes(self, raw: str) -> tuple[str, ...]:
        scopes = tuple(raw.split())
        for scope in scopes:
            resource = _resource_of(scope)
            if resource is not None and resource != GRAPH_RESOURCE:
                raise _AadError(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {resource} was not found in the tenant "
                    f"named {self.state.tenant_domain}. This can happen if the application "
                    "has not been installed by the administrator of the tenant.",
                )
        return scopes

    def _id_token(self, client_id: str) -> str:
        now = int(time.time())
        claims = {
            "aud": client_id,
            "iss": f"{self.origin}/{self.state.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_LIFETIME,
            "name": "Sandbox Admin",
            "oid": self.state.admin_object_id,
            "preferred_username": self.state.admin_upn,
            "sub": _b64url(self.state.admin_object_id.encode())[:43],
            "tid": self.state.tenant_id,
            "ver": "2.0",
        }
        header = {"alg": "none", "typ": "JWT"}
        return (
            ".".join(
                _b64url(json.dumps(part, separators=(",", ":")).encode())
                for part in (header, claims)
            )
            + "."
        )

    def _user_tokens(self, client_id: str, scopes: tuple[str, ...]) -> Response:
        resource_scopes = tuple(s for s in scopes if s not in _OIDC_SCOPES)
        # Named scopes are consented on first use (the admin consents once); `.default`
        # asks for whatever the client already holds, as in Entra.
        named = tuple(
            s.rpartition("/")[2] if "://" in s else s
            for s in resource_scopes
            if not s.endswith("/.default")
        )
        granted = self.state.grants.consent(client_id, named)
        access = self.state.tokens.issue_access_token(
            kind="user",
            client_id=client_id,
            audience=GRAPH_RESOURCE,
            scopes=granted,
            subject=self.state.admin_object_id,
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(resource_scopes),
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME,
            "access_token": access,
            "refresh_token": self.state.tokens.issue_refresh_token(
                client_id, scopes, self.state.admin_object_id
            ),
            "id_token": self._id_token(client_id),
            "client_info": _b64url(
                json.dumps(
                    {"uid": self.state.admin_object_id, "utid": self.state.tenant_id}
                ).encode()
            ),
        }
        return _json(body)

    # -- endpoints ------------------------------------------------------------------

    def openid_configuration(self, request: Request, tenant: str) -> Response:
        """GET /{tenant}/v2.0/.well-known/openid-configuration."""
        self._check_tenant(tenant)
        base = f"{self.origin}/{self.state.tenant_id}"
        return _json(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "claims_supported": [
                    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name",
                    "preferred_username", "oid", "tid", "ver",
                ],
                "tenant_region_scope": "NA",
                "cloud_instance_name": "sandbox",
                "cloud_graph_host_name": self.graph_host,
                "msgraph_host": self.graph_host,
            }
        )  # fmt: skip

    def keys(self, request: Request, tenant: str) -> Response:
        """GET /{tenant}/discovery/v2.0/keys: access tokens are opaque, so no keys."""
        self._check_tenant(tenant)
        return _json({"keys": []})

    def authorize(self, request: Request, tenant: str) -> Response:
        """The browser sign-in page is out of scope: say so instead of a bare 404."""
        self._check_tenant(tenant)
        return Response(
            "<!doctype html><title>Sandbox sign-in</title><p>The sandbox does not offer "
            "browser sign-in. Use a client secret or the device code flow.</p>",
            status=400,
            content_type="text/html; charset=utf-8",
        )

    def device_login_page(self, request: Request) -> Response:
        """The verification page device-code users are sent to."""
        return Response(
            "<!doctype html><title>Sandbox device login</title><p>The sandbox approves "
            "device codes by itself; there is nothing to enter here.</p>",
            content_type="text/html; charset=utf-8",
        )

    def device_code(self, request: Request, tenant: str) -> Response:
        """POST /{tenant}/oauth2/v2.0/devicecode: start a device code sign-in."""
        self._check_tenant(tenant)
        client_id = request.form.get("client_id", "")
        self._check_client(client_id)
        scopes = self._scopes(request.form.get("scope", ""))
        user_code = self.state.ids.choice("device", _USER_CODE_ALPHABET, 9)
        code = self.state.tokens.start_device_flow(client_id.lower(), scopes, user_code)
        verification_uri = f"{self.origin}/devicelogin"
        return _json(
            {
                "user_code": code.user_code,
                "device_code": code.device_code,
                "verification_uri": verification_uri,
                "expires_in": DEVICE_CODE_LIFETIME,
                "interval": 1,
                "message": (
                    f"To sign in, use a web browser to open the page {verification_uri} and "
                    f"enter the code {code.user_code} to authenticate. (The sandbox approves "
                    "it automatically.)"
                ),
            }
        )

    def token(self, request: Request, tenant: str) -> Response:
        """POST /{tenant}/oauth2/v2.0/token: every grant the sandbox supports."""
        self._check_tenant(tenant)
        grant = request.form.get("grant_type", "")
        if grant == "client_credentials":
            return self._client_credentials(request)
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_code_grant(request)
        if grant == "refresh_token":
            return self._refresh_grant(request)
        if not grant:
            raise _AadError(
                400, "invalid_request", 900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )  # fmt: skip
        raise _AadError(
            400, "unsupported_grant_type", 70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )  # fmt: skip

    def _client_credentials(self, request: Request) -> Response:
        client_id, secret = self._client_credentials_from(request)
        self._check_client(client_id)
        if not secret:
            raise _AadError(
                401, "invalid_client", 7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )  # fmt: skip
        if not hmac.compare_digest(secret.encode(), self.state.client_secret.encode()):
            raise _AadError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{self.state.client_id}'.",
            )
        raw_scope = request.form.get("scope", "")
        scopes = raw_scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise _AadError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {raw_scope or '(empty)'} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        self._scopes(raw_scope)
        token = self.state.tokens.issue_access_token(
            kind="app",
            client_id=self.state.client_id,
            audience=GRAPH_RESOURCE,
            scopes=tuple(scopes),
            subject=self.state.client_id,
            roles=self.state.grants.granted_app_roles(),
        )
        return _json(
            {
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_LIFETIME,
                "ext_expires_in": ACCESS_TOKEN_LIFETIME,
                "access_token": token,
            }
        )

    def _device_code_grant(self, request: Request) -> Response:
        client_id = request.form.get("client_id", "")
        self._check_client(client_id)
        code = self.state.tokens.poll_device_code(request.form.get("device_code", ""))
        if code is None or code.client_id != client_id.lower() or code.redeemed:
            raise _AadError(
                400, "invalid_grant", 70000,
                "The provided device code is not valid, or has already been used.",
            )  # fmt: skip
        if code.expires_at <= time.time():
            raise _AadError(400, "expired_token", 70020, "The device code has expired.")
        if code.polls == 1:
            raise _AadError(
                400, "authorization_pending", 70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )  # fmt: skip
        if not self.state.tokens.mark_redeemed(code.device_code):
            raise _AadError(
                400, "invalid_grant", 70000, "The provided device code has already been used."
            )
        return self._user_tokens(client_id.lower(), code.scopes)

    def _refresh_grant(self, request: Request) -> Response:
        client_id = request.form.get("client_id", "")
        self._check_client(client_id)
        grant = self.state.tokens.redeem_refresh_token(
            request.form.get("refresh_token", ""), client_id.lower()
        )
        if grant is None:
            raise _AadError(
                400, "invalid_grant", 9002313,
                "Invalid request. The refresh token is malformed or not valid.",
            )  # fmt: skip
        requested = request.form.get("scope")
        scopes = self._scopes(requested) if requested else grant.scopes
        return self._user_tokens(client_id.lower(), scopes)

    # -- WSGI -----------------------------------------------------------------------

    def _respond(self, request: Request) -> Response:
        try:
            adapter = self.url_map.bind_to_environ(request.environ)
            endpoint, args = adapter.match()
            return endpoint(request, **args)  # type: ignore[no-any-return]
        except _AadError as error:
            return self._error(error)
        except MethodNotAllowed:
            return self._error(
                _AadError(
                    405,
                    "invalid_request",
                    900561,
                    f"This endpoint does not accept {request.method} requests.",
                )
            )
        except NotFound:
            return Response(
                "<!doctype html><title>Not found</title><p>No sign-in endpoint here.</p>",
                status=404,
                content_type="text/html; charset=utf-8",
            )
        except HTTPException as error:
            return self._error(_AadError(error.code or 400, "invalid_request", 900144, str(error)))
        except Exception:
            # A bug in the stand-in: log the (redacted) trace, answer like Entra's 500.
            _logger.error(
                "sign-in stand-in failed:\n%s", self.state.redactor.redact(traceback.format_exc())
            )
            return self._error(
                _AadError(500, "server_error", 90033, "The sandbox's sign-in stand-in failed.")
            )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._respond(Request(environ))(environ, start_response)
