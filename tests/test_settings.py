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


# -- every missing setting at once ------------------------------------------------------------


@pytest.fixture
def _no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runbook_lib._settings._from_keyring", lambda name: None)
    monkeypatch.setattr("runbook_lib._auth._from_keyring", lambda name: None)


@pytest.mark.usefixtures("_no_keyring")
def test_every_missing_setting_is_named_at_once() -> None:
    from runbook_lib._settings import require_settings

    with pytest.raises(ConfigurationError) as info:
        require_settings(load_settings())
    message, fix = info.value.message, info.value.remediation
    assert message.startswith("3 settings are missing:")
    for name in ("RUNBOOK_TENANT_ID", "RUNBOOK_SCIM_URL", "RUNBOOK_SCIM_TOKEN"):
        assert f"{name} is not set" in message
        assert f"Set {name}" in message  # each with how to set it
    assert "keyring set runbook scim_token" in message
    assert "environment" in fix and "docs/settings.md" in fix
    assert info.value.hint == "00-overview"


@pytest.mark.usefixtures("_no_keyring")
def test_app_only_sign_in_names_its_own_settings_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from runbook_lib._settings import missing_settings

    monkeypatch.setenv("RUNBOOK_AUTH", "client-secret")
    monkeypatch.setenv("RUNBOOK_SCIM_URL", "https://acme.api.kandji.io/api/v1/scim")
    named = [problem.split(" ", 1)[0] for problem, _ in missing_settings(load_settings())]
    assert named == [
        "RUNBOOK_TENANT_ID",
        "RUNBOOK_CLIENT_ID",
        "RUNBOOK_CLIENT_SECRET",
        "RUNBOOK_SCIM_TOKEN",
    ]


@pytest.mark.usefixtures("_no_keyring")
def test_one_missing_setting_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    from runbook_lib._settings import require_settings

    monkeypatch.setenv("RUNBOOK_TENANT_ID", "contoso.onmicrosoft.com")
    monkeypatch.setenv("RUNBOOK_SCIM_TOKEN", CANARY)
    with pytest.raises(ConfigurationError) as info:
        require_settings()
    assert info.value.message == "RUNBOOK_SCIM_URL is not set."
    assert "View Details" in info.value.remediation and "/api/v1/scim" in info.value.remediation


def test_complete_settings_pass_and_the_keyring_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    from runbook_lib._settings import missing_settings, require_settings

    monkeypatch.setattr(
        "runbook_lib._settings._from_keyring", lambda name: CANARY if name == "scim_token" else None
    )
    monkeypatch.setenv("RUNBOOK_TENANT_ID", "contoso.onmicrosoft.com")
    monkeypatch.setenv("RUNBOOK_SCIM_URL", "https://acme.api.kandji.io/api/v1/scim")
    settings = load_settings()
    assert missing_settings(settings) == []
    assert require_settings(settings) is settings
    assert [p for p, _ in missing_settings(settings, check_keyring=False)] == [
        "RUNBOOK_SCIM_TOKEN is not set"
    ]


@pytest.mark.usefixtures("_no_keyring")
def test_a_tenant_run_names_every_missing_setting_before_any_page(tmp_path, capfd) -> None:
    from runbook_lib.cli import main

    runs = tmp_path / "runs"
    assert main(["run", "--target", "tenant", "--runs-dir", str(runs)]) == 2
    out, err = capfd.readouterr()
    assert "Running the runbook" not in out and "Traceback" not in err
    for name in ("RUNBOOK_TENANT_ID", "RUNBOOK_SCIM_URL", "RUNBOOK_SCIM_TOKEN"):
        assert name in err
    assert not runs.exists()
