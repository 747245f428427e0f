"""Settings: environment first, secrets never as parameters, errors that name the variable."""

from __future__ import annotations

import pytest

from runbook_lib import ConfigurationError, load_settings, require_secret
from runbook_lib._redact import redact

CANARY = "canary-settings-7f3a9c"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("RUNBOOK_"):
            monkeypatch.delenv(key)


def test_defaults_point_at_microsoft() -> None:
    s = load_settings()
    assert s.authority == "https://login.microsoftonline.com"
    assert s.graph_url == "https://graph.microsoft.com/v1.0"
    assert s.graph_scope == "https://graph.microsoft.com/.default"
    assert s.scim_token is None and s.client_secret is None


def test_environment_values_are_read_and_parameters_override_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNBOOK_APP_NAME", "From env")
    monkeypatch.setenv("RUNBOOK_SCIM_URL", "https://acme.api.kandji.io/api/v1/scim")
    assert load_settings().app_name == "From env"
    assert load_settings(app_name="From parameter").app_name == "From parameter"
    # An empty parameter (the notebook default) falls back to the environment.
    assert load_settings(app_name="").app_name == "From env"


def test_secrets_are_refused_as_parameters() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(scim_token=CANARY)
    assert "RUNBOOK_SCIM_TOKEN" in str(info.value)
    assert CANARY not in str(info.value)


def test_secret_is_masked_in_repr_and_registered_for_redaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNBOOK_SCIM_TOKEN", CANARY)
    s = load_settings()
    assert CANARY not in repr(s) and CANARY not in str(s)
    assert s.scim_token is not None and s.scim_token.get_secret_value() == CANARY
    assert redact(f"server said {CANARY}") == "server said ***"


def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_GRAPH_URL", "http://graph.example")
    monkeypatch.setenv("RUNBOOK_TENANT_ID", "not a tenant!")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    text = str(info.value)
    assert "RUNBOOK_GRAPH_URL" in text and "https://" in text
    assert "RUNBOOK_TENANT_ID" in text


def test_missing_ca_bundle_file_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("RUNBOOK_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="RUNBOOK_CA_BUNDLE"):
        load_settings()


def test_missing_secret_without_keyring_or_terminal_says_how_to_set_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("runbook_lib._settings._from_keyring", lambda name: None)
    with pytest.raises(ConfigurationError) as info:
        require_secret(load_settings(), "scim_token")
    assert "RUNBOOK_SCIM_TOKEN is not set" in info.value.message
    assert "keyring set runbook scim_token" in info.value.remediation


def test_secret_from_keyring_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "runbook_lib._settings._from_keyring", lambda name: CANARY if name == "scim_token" else None
    )
    assert require_secret(load_settings(), "scim_token").get_secret_value() == CANARY


def test_national_cloud_scope_follows_the_graph_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_GRAPH_URL", "https://graph.microsoft.us/v1.0")
    assert load_settings().graph_scope == "https://graph.microsoft.us/.default"
