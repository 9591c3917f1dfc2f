"""Text printed for people cannot drive the terminal (issue 12, item 17)."""

from __future__ import annotations

import io

import msgspec
import orjson
import pytest

from harvester.cli.output import OutputFormat, emit, print_table
from harvester.detect.render import render_findings
from harvester.terminal import printable
from tests.unit.detect.test_render import _findings

HOSTILE = "aws-cli/2.0 \x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m\u202e [red]fake[/red]\r\n"


def test_printable_escapes_every_control_character() -> None:
    assert printable(HOSTILE) == (
        "aws-cli/2.0 \\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\x9b31m\\u202e [red]fake[/red]\\x0d\\x0a"
    )
    assert printable("arn:aws:iam::1:user/ünïcode ok") == "arn:aws:iam::1:user/ünïcode ok"
    assert printable(None) == "None"


def test_tables_show_control_characters_and_markup_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_table("T", ["user_agent"], [[HOSTILE]])
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\x9b\u202e\r")
    assert "[red]fake[/red]" in out
    assert "\\x1b]52;c;ZXZpbA==" in out


def test_json_output_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    emit(OutputFormat.json, [{"user_agent": HOSTILE}], ["user_agent"], "Rows")
    assert orjson.loads(capsys.readouterr().out) == [{"user_agent": HOSTILE}]


def test_findings_table_escapes() -> None:
    anomalies, _ = _findings()
    hostile = [msgspec.structs.replace(a, title=HOSTILE) for a in anomalies]  # type: ignore[type-var]
    out = io.StringIO()
    render_findings(hostile, [], "table", stream=out)
    text = out.getvalue()
    assert "\\x1b" in text or "\\x07" in text  # folded, but escaped
    assert not any(c in text for c in "\x1b\x07\x9b\u202e")


def test_console_lines_and_errors_escape(capsys: pytest.CaptureFixture[str]) -> None:
    from harvester.cli.output import console

    console().print(f"degraded: {HOSTILE}", markup=False)
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\x9b\u202e\r")
    assert "\\x1b[2J" in out
