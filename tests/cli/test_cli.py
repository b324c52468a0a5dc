"""The `ivrdesk` command line: accounts, launches from JSON and CSV, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.accounts.tokens import authenticate_user, find_token, hash_token
from app.config import Settings
from app.models import ApiToken, Call, Campaign
from app.simulator.server import Simulator
from tests.conftest import db
from tests.launch.test_launch import flat_body

ROOT = Path(__file__).resolve().parents[2]


def test_tokens_create_prints_the_token_last_and_stores_its_hash(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["tokens", "create", "crm", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("ivr_")
    with db(app) as session:
        stored = session.scalars(select(ApiToken)).one()
        assert stored.token_hash == hash_token(secret)
        assert secret not in stored.token_hash
        token = find_token(session, secret)
        assert token is not None
        assert token.role == "viewer"


def test_tokens_create_refuses_a_bad_role(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["tokens", "create", "crm", "--role", "admin"])
    assert result.exit_code == 2
    assert "'admin' is not one of 'viewer', 'operator'" in result.output


def test_users_create_reads_the_password_from_stdin(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "ana", "--role", "operator"], input="correct horse battery\n"
    )
    assert result.exit_code == 0, result.output
    with db(app) as session:
        user = authenticate_user(session, "ana", "correct horse battery")
        assert user is not None
        assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
        assert authenticate_user(session, "ana", "wrong password!") is None
    again = runner.invoke(args=["users", "create", "ana", "--role", "viewer"], input="x" * 12)
    assert again.exit_code == 1
    assert "exists already" in again.output
    short = runner.invoke(args=["users", "create", "bo", "--role", "viewer"], input="short\n")
    assert "at least 10 characters" in short.output


def test_launch_from_a_json_file(app: Flask, simulator: Simulator, tmp_path: Path) -> None:
    body = tmp_path / "launch.json"
    body.write_text(json.dumps(flat_body("41793026727", "41793026731")))
    result = app.test_cli_runner().invoke(args=["launch", str(body)])
    assert result.exit_code == 0, result.output
    assert "campaign flat-1" in result.output
    assert "accepted 2" in result.output
    assert simulator.launch_count == 1


def test_launch_of_the_same_file_again_sends_nothing(
    app: Flask, simulator: Simulator, tmp_path: Path
) -> None:
    body = tmp_path / "launch.json"
    body.write_text(json.dumps(flat_body("41793026727", "41793026731")))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["launch", str(body)]).exit_code == 0
    again = runner.invoke(args=["launch", str(body)])
    assert again.exit_code == 0, again.output
    assert "campaign flat-1 exists already with this body; nothing sent" in again.output
    assert "accepted 2" in again.output
    assert simulator.launch_count == 1


def test_launch_invalid_json_file_lists_problems(app: Flask, tmp_path: Path) -> None:
    body = tmp_path / "launch.json"
    body.write_text(json.dumps(flat_body("41793026727", "0911234567")))
    result = app.test_cli_runner().invoke(args=["launch", str(body)])
    assert result.exit_code == 1
    assert "to[1]: " in result.output
    assert "country code" in result.output


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_launch_csv_groups_rows_by_parameters(
    app: Flask, simulator: Simulator, tmp_path: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "numbers.csv",
        [
            "to,clinic,slot",
            "+385 98 111 2233,Zagreb East,09:30",
            "385917654321,Zagreb East,09:30",
            "0038591 7654 322,Split,10:00",
        ],
    )
    result = app.test_cli_runner().invoke(
        args=[
            "launch", "--csv", str(csv_file), "--scenario", "SCEN1", "--from", "38517771234",
            "--callback-data", "batch-17", "--bulk-id", "csv-1",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    messages = [m for request in simulator.requests for m in request["messages"]]
    grouped = {m["parameters"]["clinic"]: [d["to"] for d in m["destinations"]] for m in messages}
    assert grouped == {
        "Zagreb East": ["385981112233", "385917654321"],
        "Split": ["385917654322"],
    }
    assert {m["callbackData"] for m in messages} == {"batch-17"}


@pytest.mark.parametrize("batch_size", [25_000, 7_000])
def test_launch_csv_splits_a_group_into_messages_of_20000(
    settings: Settings, make_app: Any, simulator: Simulator, tmp_path: Path, batch_size: int
) -> None:
    # 25,000: one request carries every row, so the fake Infobip sees the messages as
    # the CSV made them; 7,000: requests cut across the split.
    app = make_app(settings, batch_size=batch_size)
    rows = ["to,clinic", *(f"4179{n:07d},Zagreb East" for n in range(20_001)), "41791234567,Split"]
    csv_file = write_csv(tmp_path / "numbers.csv", rows)
    result = app.test_cli_runner().invoke(
        args=["launch", "--csv", str(csv_file), "--scenario", "SCEN1", "--bulk-id", "big-1"]
    )
    assert result.exit_code == 0, result.output
    assert "campaign big-1" in result.output
    assert "accepted 20002" in result.output
    sent = [
        (m["parameters"]["clinic"], d["to"])
        for request in simulator.requests
        for m in request["messages"]
        for d in m["destinations"]
    ]
    assert len(sent) == len(set(sent)) == 20_002
    assert {request["bulkId"] for request in simulator.requests} == {"big-1"}
    with db(app) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert [len(m["parameters"]) for m in campaign.messages] == [1, 1, 1]
        indexes = session.execute(
            select(Call.message_index, func.count()).group_by(Call.message_index)
        )
        assert dict(indexes.all()) == {0: 20_000, 1: 1, 2: 1}


def test_launch_csv_with_a_bad_row_sends_nothing(
    app: Flask, simulator: Simulator, tmp_path: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "numbers.csv", ["to,name", "385981112233,Ana", "091 234 5678,Bo", "12ab,Cy"]
    )
    result = app.test_cli_runner().invoke(
        args=["launch", "--csv", str(csv_file), "--scenario", "SCEN1"]
    )
    assert result.exit_code == 1
    assert "2 bad row(s); nothing was sent" in result.output
    assert "row 3: to '091 234 5678'" in result.output
    assert "row 4: to '12ab'" in result.output
    assert simulator.launch_count == 0
    with db(app) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
        assert session.scalar(select(func.count()).select_from(Call)) == 0


def test_launch_csv_without_a_to_column(app: Flask, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "numbers.csv", ["number", "385981112233"])
    result = app.test_cli_runner().invoke(
        args=["launch", "--csv", str(csv_file), "--scenario", "SCEN1"]
    )
    assert result.exit_code == 1
    assert "`to` column" in result.output


def ivrdesk(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "ivrdesk"), *args]
    return subprocess.run(
        command, env=env, input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60,
        check=False,
    )  # fmt: skip


def base_env(settings: Any) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "IVR_ENV": "development",
        "IVR_DATABASE_URL": settings.database_url,
        "IVR_INSTANCE_PATH": str(settings.instance_path),
        "IVR_LOG_FORMAT": "text",
    }


def test_console_script_reports_a_bad_setting_in_one_line(settings: Any) -> None:
    result = ivrdesk("db", "upgrade", env={**base_env(settings), "IVR_BATCH_SIZE": "many"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ivrdesk: configuration error: IVR_BATCH_SIZE must be a whole number, got 'many'"
    )


def test_console_script_creates_a_token(settings: Any, app: Flask) -> None:
    env = base_env(settings)
    assert ivrdesk("db", "upgrade", env=env).returncode == 0
    result = ivrdesk("tokens", "create", "ops", "--role", "operator", env=env)
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    with db(app) as session:
        assert find_token(session, secret) is not None


def test_flask_cli_has_the_same_commands(settings: Any) -> None:
    flask = str(Path(sys.executable).parent / "flask")
    result = subprocess.run(
        [flask, "--app", "wsgi", "--help"], env=base_env(settings), capture_output=True,
        text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for command in ("db", "tokens", "users", "launch", "campaigns", "dispatch", "simulator"):
        assert f"  {command}" in result.stdout


def test_console_script_help_needs_no_configuration() -> None:
    result = ivrdesk("--help", env={"PATH": os.environ.get("PATH", "")})
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    for command in ("launch", "dispatch", "reports", "calls", "campaigns"):
        assert f"  {command}" in result.stdout
