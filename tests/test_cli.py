"""The ``ascolta`` command follows common conventions: --help, exit codes, results on stdout, logs on stderr."""
from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

COMMANDS = ["broker", "worker", "replay", "demo", "classify", "stories", "detect", "model", "sample"]


def ascolta(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_exits_zero(command):
    result = ascolta(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: ascolta" in result.stdout


def test_unknown_command_is_a_usage_error():
    result = ascolta("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.parametrize("command", ["detect", "replay"])
def test_missing_input_file_exits_2_with_a_message(command, tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = ascolta(command, str(missing))
    assert result.returncode == 2
    assert "nope.jsonl" in result.stderr
    assert result.stdout == ""


def test_classify_keeps_order_and_reports_empty_lines(tmp_path):
    lines = ["Che schifo, servizio pessimo e nessun rimborso.", "", "I absolutely love this, best purchase ever!",
             "   "]
    result = ascolta("classify", "--batch-size", "2", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)
    assert out[0]["label"] == "negative" and out[0]["score"] < 0
    assert "error" in out[1] and "error" in out[3]
    assert out[2]["label"] == "positive" and out[2]["score"] > 0
    assert "classified 2 texts" in result.stderr


def test_flags_override_the_environment_without_writing_it(monkeypatch, tmp_path):
    import os
    from pathlib import Path

    from streams.settings import Settings

    monkeypatch.setenv("ASCOLTA_BROKER", "kafka://from-env:9092")
    monkeypatch.setenv("ASCOLTA_WEB_PORT", "7000")
    monkeypatch.setenv("SLACK_WEBHOOK_PR", "https://hooks.example/secret")
    settings = Settings.from_environ(broker="kafka://from-flag:9092", data_dir=str(tmp_path), web_port=None)
    assert settings.broker == "kafka://from-flag:9092"
    assert settings.web_port == 7000  # a flag left out keeps the environment's value
    assert settings.data_dir == Path(tmp_path)
    assert settings.environ["SLACK_WEBHOOK_PR"] == "https://hooks.example/secret"
    with pytest.raises(TypeError):
        settings.environ["SLACK_WEBHOOK_PR"] = "changed"  # a read-only snapshot
    assert os.environ["ASCOLTA_BROKER"] == "kafka://from-env:9092"  # the flag never went back into it


def test_a_bad_setting_is_a_usage_error_before_anything_runs(tmp_path):
    import os

    result = subprocess.run([sys.executable, "-m", "streams.cli", "sample", "--hours", "1"],
                            env={**os.environ, "ASCOLTA_PARTITIONS": "many"}, capture_output=True, text=True)
    assert result.returncode == 2
    assert "ASCOLTA_PARTITIONS must be an integer" in result.stderr
