"""``icepeer nat-type``: what kind of NAT are we behind? (RFC 5780 behaviour discovery)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from icecommon.options import add_option

from ..errors import ConfigError
from ..nat import discover
from ..nat.behavior import Behaviour
from .common import ice_url

EXPLAIN = {
    "open internet": "no NAT and no filtering: anyone can reach this address",
    "no NAT, firewalled": "a public address, but a firewall drops unsolicited traffic",
    "full cone": "one public port per local port, and anyone may send to it",
    "address-restricted cone": "one public port per local port; only addresses "
    "you have sent to may answer",
    "port-restricted cone": "one public port per local port; only the exact address "
    "and port you sent to may answer",
    "symmetric": "a different public port for every destination: direct connections need "
    "the other side to be open, or a TURN relay",
    "UDP blocked": "UDP gets no answer: only TURN over TCP or TLS can work",
    "NAT of unknown type": "there is a NAT; its behaviour could not be measured",
    "no NAT, filtering unknown": "no address translation; filtering could not be measured",
}


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "nat-type",
        help="classify the NAT this machine sits behind (RFC 5780)",
        description="Run the RFC 5780 NAT behaviour discovery tests against a STUN server and "
        "name the mapping and filtering behaviour (endpoint-independent, address-dependent, "
        "address-and-port-dependent) and the familiar NAT type. The server must listen on two "
        "IP addresses (coturn does so when given two --listening-ip); with one address, only "
        "'NAT or not' can be told.",
    )
    add_option(parser, "--ice-server", env="ICEPEER_NAT_STUN", type=ice_url, required=False,
               metavar="URL", help="STUN server, stun:host[:port] (a turn: URL is used as STUN)")
    add_option(parser, "--json", env="ICEPEER_JSON", action="store_true",
               help="print one JSON object on stdout")
    add_option(parser, "--timeout", env="ICEPEER_NAT_TIMEOUT", type=float, default=3.0,
               help="seconds to wait for each answer; a test without one counts as 'no answer'")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging on stderr (-vv debug)")
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    server = args.ice_server
    if server is None:
        raise ConfigError("--ice-server stun:HOST[:PORT] is required")
    if server.secure:
        raise ConfigError(f"{server.url()}: behaviour discovery runs over plain UDP; "
                          "give a stun: URL")
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    result = await discover(server.host, server.port, timeout=args.timeout)
    v, obs = result.verdict, result.observations
    if args.json:
        doc: dict[str, Any] = {
            "nat_type": v.name,
            "mapping": v.mapping.value,
            "filtering": v.filtering.value,
            "nat": v.nat,
            "local": _addr(obs.local),
            "mapped": _addr(v.mapped),
            "other_address": _addr(obs.test1.other if obs.test1 else None),
            "server": _addr(result.server),
            "notes": list(v.notes),
        }
        print(json.dumps(doc), flush=True)
    else:
        print(f"NAT type:  {v.name}  ({EXPLAIN.get(v.name, '')})")
        if v.mapped is not None:
            print(f"address:   {_addr(obs.local)} -> {_addr(v.mapped)} as seen by {_addr(result.server)}")
        if v.mapping is not Behaviour.UNKNOWN or v.filtering is not Behaviour.UNKNOWN:
            print(f"mapping:   {v.mapping.value}")
            print(f"filtering: {v.filtering.value}")
        for note in v.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0


def _addr(addr: tuple[str, int] | None) -> str | None:
    return None if addr is None else f"{addr[0]}:{addr[1]}"
