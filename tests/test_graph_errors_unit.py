"""Unit tests of the Graph client's error and retry branches (an httpx MockTransport).

Everything else about the client is tested against the sandbox over real HTTPS.
"""

from __future__ import annotations

import time

import httpx
import pytest
from azure.core.credentials import AccessToken

from runbook_lib import GraphAuthError, GraphClient, GraphError, GraphThrottled
from runbook_lib._redact import register_secret


class _StaticCredential:
    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("unit-token", int(time.time()) + 3600)


def _client(handler, sleeps: list[float], retries: int = 3) -> GraphClient:
    return GraphClient(
        "https://graph.test/v1.0",
        _StaticCredential(),
        transport=httpx.MockTransport(handler),
        max_retries=retries,
        sleep=sleeps.append,
    )


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"request-id": "rid-1", "date": "x"},
        }
    }
    return httpx.Response(status, json=body, headers=headers or {})


def test_429_is_retried_after_retry_after_then_succeeds() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return _error(429, "TooManyRequests", "slow down", {"Retry-After": "2"})
        return httpx.Response(200, json={"value": [1]})

    sleeps: list[float] = []
    assert _client(handler, sleeps).get("servicePrincipals") == {"value": [1]}
    assert sleeps == [2.0, 2.0]


def test_503_without_retry_after_backs_off_exponentially_and_gives_up() -> None:
    sleeps: list[float] = []
    client = _client(lambda r: _error(503, "ServiceUnavailable", "busy"), sleeps, retries=3)
    with pytest.raises(GraphThrottled) as info:
        client.get("servicePrincipals")
    assert sleeps == [1.0, 2.0, 4.0]
    assert info.value.status == 503 and info.value.code == "ServiceUnavailable"


def test_error_body_keeps_code_message_and_request_id() -> None:
    client = _client(
        lambda r: _error(403, "Authorization_RequestDenied", "Insufficient privileges"), []
    )
    with pytest.raises(GraphAuthError) as info:
        client.post("servicePrincipals/x/synchronization/jobs", {"templateId": "scim"})
    err = info.value
    assert (err.status, err.code, err.request_id) == (403, "Authorization_RequestDenied", "rid-1")
    assert "Insufficient privileges" in str(err)
    assert "Synchronization.ReadWrite.All" in err.remediation  # the call's own permission


def test_a_secret_echoed_by_the_server_is_redacted() -> None:
    secret = "echoed-canary-93b1"
    register_secret(secret)
    client = _client(lambda r: _error(400, "Request_BadRequest", f"bad token {secret}"), [])
    with pytest.raises(GraphError) as info:
        client.post("x", {})
    assert secret not in str(info.value) and "***" in str(info.value)


def test_non_json_error_body_still_gives_a_sentence() -> None:
    client = _client(lambda r: httpx.Response(502, text="<html>Bad gateway</html>"), [])
    with pytest.raises(GraphError) as info:
        client.get("x")
    assert "HTTP 502" in str(info.value)
