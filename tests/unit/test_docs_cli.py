"""docs/cli.md is what docs/gen_cli.py makes from the live --help output right now."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "docs" / "gen_cli.py")
assert spec is not None and spec.loader is not None
gen_cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_cli)


@pytest.fixture(scope="module")
def rendered() -> str:
    return gen_cli.render()


def test_docs_cli_md_is_up_to_date(rendered):
    diff = gen_cli.stale_diff(rendered)
    if diff:
        pytest.fail(
            "docs/cli.md is stale: a command or a flag changed since it was generated.\n"
            f"Regenerate it with `{gen_cli.REGENERATE}` and commit docs/cli.md.\n\n{diff[:4000]}",
            pytrace=False,
        )


def test_every_command_is_documented(rendered):
    from icepeer.cli import build_parser

    names = {p.prog for p in gen_cli.walk(build_parser())}
    assert {"icepeer", "icepeer connect", "icepeer demo", "icepeer lab run"} <= names
    for name in names | {"python -m signaling"}:
        assert f"\n## {name}\n" in rendered, name
        assert f"usage: {name} " in rendered, name


def test_rendering_ignores_the_callers_environment(monkeypatch, rendered):
    # A developer's ICEPEER_SIGNAL, a wide terminal or the venv's location must not leak in.
    monkeypatch.setenv("ICEPEER_SIGNAL", "ws://somewhere.else:1")
    monkeypatch.setenv("SIGNALING_PORT", "1")
    monkeypatch.setenv("COLUMNS", "200")
    text = gen_cli.render()
    assert "somewhere.else" not in text
    assert "default: 8765" in text
    assert text == rendered
    assert str(Path(sys.executable).parent) not in text


def test_receive_help_does_not_promise_a_fresh_code(capsys):
    # The receiver never makes a code: it takes the sender's, or asks for it on a terminal.
    from icepeer.cli import main

    def room_help(command: str) -> str:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        return text[text.index("--room ROOM "):text.index("--signal SIGNAL ")]

    assert "a new code is made" in room_help("send")
    receive = room_help("receive")
    assert "code is made" not in receive and "fresh" not in receive
    assert "when 'icepeer send' used --room" in receive
