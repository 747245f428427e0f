"""``runbook sim`` pieces: options, environment adoption, the env file, serve-until-signal."""

from __future__ import annotations

import argparse
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from runbook_lib.sim import (
    add_sim_arguments,
    config_from_environment,
    faults_from_arguments,
    write_env_file,
)


def test_options_and_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args([])
    assert (args.seed, args.host, args.consistency_reads, args.env_file) == (
        1,
        "127.0.0.1",
        2,
        None,
    )
    args = parser.parse_args(
        ["--seed", "9", "--graph-port", "8443", "--consistency-reads", "0", "--env-file", "x.env"]
    )
    assert (args.seed, args.graph_port, args.consistency_reads, args.env_file) == (
        9,
        8443,
        0,
        Path("x.env"),
    )


def test_an_existing_scim_token_is_adopted() -> None:
    config = config_from_environment(4, environ={"RUNBOOK_SCIM_TOKEN": "from-the-shell-123"})
    assert config.seed == 4 and config.scim_token == "from-the-shell-123"
    assert config_from_environment(4, environ={}).scim_token is None
    assert config_from_environment(4, environ={"RUNBOOK_SCIM_TOKEN": ""}).scim_token is None


def test_env_file_is_private_and_shell_quoted(tmp_path: Path) -> None:
    path = tmp_path / "sim.env"
    path.write_text("old")
    path.chmod(0o644)
    write_env_file(path, {"RUNBOOK_A": "plain", "RUNBOOK_B": "it's"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "export RUNBOOK_A='plain'\nexport RUNBOOK_B='it'\\''s'\n"
    shown = subprocess.run(
        ["sh", "-c", f'. {path} && printf %s "$RUNBOOK_B"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == "it's"


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 20) -> str:
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError("sandbox did not announce itself:\n" + "".join(lines))


def test_run_sim_prints_no_secrets_and_stops_on_sigterm(tmp_path: Path) -> None:
    env_file = tmp_path / "sandbox.env"
    environ = {**os.environ, "RUNBOOK_SCIM_TOKEN": "CANARY-token-from-env-42"}
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook_lib.sim", "--seed", "5", "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    try:
        printed = _read_until(process, "Ctrl-C")
        values = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        values = {key: value.strip("'") for key, value in values.items()}
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert values["RUNBOOK_SCIM_TOKEN"] == "CANARY-token-from-env-42"
        assert "CANARY" not in printed and values["RUNBOOK_CLIENT_SECRET"] not in printed
        assert (
            "RUNBOOK_SCIM_TOKEN=<hidden" in printed and "RUNBOOK_CLIENT_SECRET=<hidden" in printed
        )
        assert f"RUNBOOK_GRAPH_URL={values['RUNBOOK_GRAPH_URL']}" in printed
        assert f"source {env_file}" in printed
        # The served SCIM endpoint accepts the adopted token.
        import ssl

        verify = ssl.create_default_context(cafile=values["RUNBOOK_CA_BUNDLE"])
        response = httpx.get(
            values["RUNBOOK_SCIM_URL"] + "/Users",
            headers={"Authorization": "Bearer CANARY-token-from-env-42"},
            verify=verify,
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Sandbox stopped." in out
    assert "CANARY" not in out + err
    assert not Path(values["RUNBOOK_CA_BUNDLE"]).exists()  # private temp dir removed


def test_run_sim_without_env_file_says_how_to_get_secrets(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook_lib.sim"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = _read_until(process, "Ctrl-C")
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "--env-file" in printed
    assert process.returncode == 0


def test_tenant_and_fault_options() -> None:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args([])
    assert (args.users, args.groups, args.tier, args.cycle_seconds, args.fault) == (
        12,
        5,
        "p1",
        None,
        [],
    )
    args = parser.parse_args(
        [
            "--users", "500", "--groups", "20", "--tier", "free", "--cycle-seconds", "5",
            "--assignment-reads", "0", "--fault", "iru POST /api/v1/scim/Users 429 rate=0.5",
            "--latency-ms", "20",
        ]
    )  # fmt: skip
    faults = faults_from_arguments(args.fault, args.latency_ms, args.jitter_ms)
    assert [f.kind for f in faults] == ["status", "latency", "latency"]
    config = config_from_environment(
        3,
        users=args.users,
        groups=args.groups,
        tier=args.tier,
        cycle_seconds=args.cycle_seconds,
        assignment_reads=args.assignment_reads,
        faults=faults,
        environ={"RUNBOOK_IRU_API_TOKEN": "api-token-from-shell"},
    )
    assert (config.users, config.groups, config.tier, config.cycle_seconds) == (500, 20, "free", 5)
    assert config.iru_api_token == "api-token-from-shell" and config.faults == faults
    with pytest.raises(SystemExit):
        parser.parse_args(["--tier", "gold"])


def test_run_sim_refuses_a_bad_fault_rule() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runbook_lib.sim", "--fault", "iru GET /x teapot"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "error:" in result.stderr and "kind" in result.stderr


def test_run_sim_env_file_has_admin_and_api_access(tmp_path: Path) -> None:
    env_file = tmp_path / "sandbox.env"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "runbook_lib.sim", "--env-file", str(env_file),
            "--users", "30", "--cycle-seconds", "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        printed = _read_until(process, "Ctrl-C")
        values = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        values = {key: value.strip("'") for key, value in values.items()}
        for secret in ("RUNBOOK_IRU_API_TOKEN", "RUNBOOK_SANDBOX_ADMIN_TOKEN"):
            assert values[secret] and values[secret] not in printed
            assert f"{secret}=<hidden" in printed
        assert "30 users" in printed and "every 60 s" in printed
        import ssl

        verify = ssl.create_default_context(cafile=values["RUNBOOK_CA_BUNDLE"])
        status = httpx.get(
            values["RUNBOOK_SANDBOX_ADMIN_URL"],
            headers={"Authorization": f"Bearer {values['RUNBOOK_SANDBOX_ADMIN_TOKEN']}"},
            verify=verify,
        ).json()
        assert status["users"] == 32 and status["cycleSeconds"] == 60
        users = httpx.get(
            values["RUNBOOK_IRU_API_URL"] + "/api/v1/users",
            headers={"Authorization": f"Bearer {values['RUNBOOK_IRU_API_TOKEN']}"},
            verify=verify,
        )
        assert users.status_code == 200
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
