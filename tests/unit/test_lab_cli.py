"""The lab and nat-type commands' parsing and dry run: no root, no I/O."""

from __future__ import annotations

import pytest

from icepeer.cli import main


def test_dry_run_prints_the_build(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "run", "--a", "addr", "--b", "sym", "--loss", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ip netns add ipl")
    assert "--random-fully" in out and "@contacted" in out
    assert "--probability 0.02" in out


def test_shared_lan_kinds_pair_with_themselves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "run", "--a", "same-lan", "--dry-run"]) == 0
    assert "-a-h2" in capsys.readouterr().out
    assert main(["lab", "run", "--a", "same-lan", "--b", "prc", "--dry-run"]) == 2
    assert "pair it with itself" in capsys.readouterr().err


def test_bad_kind_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["lab", "run", "--a", "cone"])
    assert exc.value.code == 2
    assert "choose from none, full" in capsys.readouterr().err


def test_bad_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "run", "--a", "prc", "--jitter", "5", "--dry-run"]) == 2
    assert "jitter needs a delay" in capsys.readouterr().err


def test_nat_type_needs_a_plain_stun_server(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ICEPEER_NAT_STUN", raising=False)
    assert main(["nat-type"]) == 2
    assert "--ice-server" in capsys.readouterr().err
    assert main(["nat-type", "--ice-server", "stuns:example.org"]) == 2
    assert "plain UDP" in capsys.readouterr().err
