"""``ascolta stories``: mention lines in, the same mentions out in input order with their story; exit codes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
POST = "Caffè Aurora knew about the contamination and kept selling? Disgusting. Never again there"


def ascolta(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)


def lines() -> str:
    records = [
        {"id": "a", "brand": "Caffè Aurora", "source": "twitter", "text": POST, "created_at": "2026-12-01T10:00:00Z",
         "author": {"id": "u1"}},
        {"id": "b", "brand": "Caffè Aurora", "source": "twitter", "text": f"RT @u1: {POST}",
         "created_at": "2026-12-01T10:01:00Z", "author": {"id": "u2"}},
        "not json at all",
        {"id": "c", "brand": "Velo Motors", "source": "news", "text": POST, "created_at": "2026-12-01T10:02:00Z",
         "author": {"id": "u3"}},
    ]
    return "\n".join(r if isinstance(r, str) else orjson.dumps(r).decode() for r in records) + "\n"


def check(out: str) -> None:
    a, b, bad, c = map(orjson.loads, out.splitlines())
    assert [a["id"], b["id"], c["id"]] == ["a", "b", "c"]  # input order, every line accounted for
    assert b["story"]["id"] == a["story"]["id"] and b["story"]["copy_of"] == "a"
    assert c["story"]["id"] != a["story"]["id"] and not c["story"]["is_copy"]  # stories are per brand
    assert bad == {"error": bad["error"], "line": 3} and "not JSON" in bad["error"]


def test_copies_only_keeps_order_marks_copies_and_exits_1_for_a_bad_line():
    result = ascolta("stories", "-", "--copies-only", stdin=lines())
    assert result.returncode == 1, result.stderr
    check(result.stdout)
    assert "assigned stories to 3 mentions" in result.stderr and "1 lines were no mention" in result.stderr


def test_with_the_default_model_the_same_copies_group(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(lines(), encoding="utf-8")
    result = ascolta("stories", str(path))
    assert result.returncode == 1, result.stderr
    check(result.stdout)


def test_help_and_an_unreadable_file():
    assert ascolta("stories", "--help").returncode == 0
    result = ascolta("stories", "/nonexistent/mentions.jsonl", "--copies-only")
    assert result.returncode == 2 and "cannot read" in result.stderr
