"""The lab and nat-type commands' parsing and dry run: no root, no I/O."""

from __future__ import annotations

import pytest

from icepeer.cli import main
from icepeer.lab.profiles import PROFILES


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


def test_profile_sets_the_path_and_flags_override_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "run", "--a", "prc", "--b", "sym", "--profile", "mobile", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tuntap add" in out and "mode tap" in out
    assert "tbf rate 10mbit" in out and "--probability 0.01" in out
    # the delay line's command, with 20 ms on each uplink (80 ms between the hosts and back)
    wire = next(line for line in out.splitlines() if "icepeer.lab.wire" in line)
    assert wire.count('"delay_ms": 20.0') == 2
    assert main(["lab", "run", "--a", "prc", "--profile", "mobile", "--rate", "2", "--loss", "0",
                 "--delay", "5", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tbf rate 2mbit" in out and "statistic" not in out and '"delay_ms": 2.5' in out


def test_no_delay_no_delay_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "run", "--a", "prc", "--profile", "lan", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tuntap" not in out and "icepeer.lab.wire" not in out and " tc " not in out


def test_ipv6_dry_run_has_firewalls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "run", "--a", "sym", "--b", "sym", "--ipv6", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("ip6tables-restore") == 2 and "2001:db8:2::2/64" in out


@pytest.mark.parametrize("argv, message", [
    (["--profile", "dialup"], "choose from lan, broadband"),
    (["--delay", "-3"], "cannot be negative"),
    (["--rate", "fast"], "not a number"),
])
def test_bad_path_flags_are_usage_errors(argv: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["lab", "run", "--a", "prc", *argv, "--dry-run"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_profiles_are_what_their_names_promise() -> None:
    rtt = {name: p.options.rtt_ms for name, p in PROFILES.items()}
    assert rtt == {"lan": 0, "broadband": 20, "mobile": 80, "intercontinental": 150,
                   "lossy-wifi": 10}
    rate = {name: p.options.rate_mbit for name, p in PROFILES.items()}
    assert rate == {"lan": None, "broadband": 50, "mobile": 10, "intercontinental": 20,
                    "lossy-wifi": None}
    loss = {name: p.options.loss_percent for name, p in PROFILES.items()}
    assert loss == {"lan": 0, "broadband": 0, "mobile": 1, "intercontinental": 0,
                    "lossy-wifi": 5}
    assert PROFILES["broadband"].options.describe() == "20 ms RTT, 50 Mbit/s"
