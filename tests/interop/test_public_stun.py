"""Well-known public STUN servers answer both of our STUN clients, and the answers agree.

- the ICE agent's gathering (:class:`icepeer.agent.Agent`, one STUN server
  each): the server-reflexive candidate it learns;
- the puncher's STUN client (:func:`icepeer.punch.gather.resolve_stun` and
  :class:`icepeer.punch.binding.BindingTransaction`, driven over one socket
  as :mod:`icepeer.punch.link` drives them): the mapped address.

Every answer must name the same public IPv4 address (ports differ: each
client has its own socket, and a symmetric NAT maps each server apart).

These tests send packets to the internet. They run only when asked for
(``pytest -m internet tests/interop`` or ``ICEPEER_INTERNET=1``); the default
test command and CI skip them (``tests/conftest.py``). Without DNS or a route
to the internet they fail within a few seconds, saying so; they never hang.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest

from icecommon.urls import parse_ice_url
from icepeer.agent import Agent
from icepeer.punch.binding import BindingTransaction, parse_stun
from icepeer.punch.gather import resolve_stun, stun_urls

SERVERS = [
    "stun:stun.l.google.com:19302",
    "stun:stun1.l.google.com:19302",
    "stun:stun.cloudflare.com:3478",
    "stun:global.stun.twilio.com:3478",
]
#: Seconds for all the names to resolve (in parallel), then for every STUN answer.
DNS_TIMEOUT = 3.0
STUN_TIMEOUT = 3.0
#: Answers needed for the comparison to mean something.
ENOUGH = 2

NO_INTERNET = (
    "no route to the internet: {why}. The internet tier asks public STUN servers over "
    "UDP and needs DNS and outbound UDP; run it on a connected machine, or leave out "
    "-m internet / ICEPEER_INTERNET=1."
)


def resolve_all(timeout: float) -> tuple[dict[str, str], dict[str, str]]:
    """Resolve every server name at once, giving up after ``timeout`` seconds.

    Daemon threads: a resolver that never answers must not hold up the test
    run or the interpreter's exit (an executor thread would, in asyncio.run).
    """
    addresses: dict[str, str] = {}
    errors: dict[str, str] = {}

    def resolve(host: str) -> None:
        try:
            addresses[host] = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)[0][
                4
            ][0]
        except OSError as exc:
            errors[host] = str(exc)

    hosts = sorted({parse_ice_url(url).host for url in SERVERS})
    threads = [threading.Thread(target=resolve, args=(h,), daemon=True) for h in hosts]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for host in hosts:
        if host not in addresses and host not in errors:
            errors[host] = f"no DNS answer within {timeout:g} s"
    return addresses, errors


@dataclass
class Answers:
    """What each client learned, by server URL: (address, port), or why not."""

    agent: dict[str, tuple[str, int] | str] = field(default_factory=dict)
    agent_hosts: set[str] = field(default_factory=set)
    puncher: dict[str, tuple[str, int] | str] = field(default_factory=dict)

    def mapped(self, which: str) -> dict[str, tuple[str, int]]:
        return {k: v for k, v in getattr(self, which).items() if isinstance(v, tuple)}


async def ask_with_agent(url: str, answers: Answers) -> None:
    """The ICE agent's way: gather with this one STUN server, take the srflx candidate."""
    agent = Agent(ice_servers=[parse_ice_url(url)], gather_timeout=STUN_TIMEOUT)
    try:
        await agent.gather()
        try:
            async with asyncio.timeout(STUN_TIMEOUT + 1):
                await agent.gathering_done.wait()
        except TimeoutError:
            answers.agent[url] = f"gathering did not finish within {STUN_TIMEOUT + 1:g} s"
            return
        srflx = [c for c in agent.local_candidates if c.type == "srflx"]
        hosts = [c for c in agent.local_candidates if c.type == "host"]
        if srflx:
            answers.agent[url] = (srflx[0].host, srflx[0].port)
        elif agent.stats.failures:
            answers.agent[url] = agent.stats.failures[0].reason
        else:
            # No NAT: the server saw a host address, and RFC 8445 section 5.1.3 drops
            # a server-reflexive candidate equal to its base.
            answers.agent[url] = "no NAT"
            answers.agent_hosts |= {c.host for c in hosts}
    finally:
        await agent.close()


async def ask_with_puncher(answers: Answers) -> None:
    """The puncher's way: resolve, then one BindingTransaction per server over one socket."""
    urls = stun_urls(SERVERS)
    servers, errors = await resolve_stun(urls, timeout=DNS_TIMEOUT)
    for error in errors:
        answers.puncher[error] = error
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.setblocking(False)
        start = loop.time()
        transactions = [
            BindingTransaction(server, start, timeout=STUN_TIMEOUT) for server in servers
        ]
        while not all(t.done for t in transactions):
            now = loop.time()
            for transaction in transactions:
                for data, addr in transaction.poll(now):
                    try:
                        sock.sendto(data, addr)
                    except OSError as exc:  # ENETUNREACH without a route
                        transaction.error = (
                            f"cannot send to {addr[0]}:{addr[1]}: {exc.strerror or exc}"
                        )
            deadlines = [d for t in transactions if (d := t.next_deadline()) is not None]
            try:
                async with asyncio.timeout(max(0.0, min(deadlines, default=now) - loop.time())):
                    data, addr = await loop.sock_recvfrom(sock, 2048)
            except TimeoutError:
                continue
            message = parse_stun(data)
            if message is not None:
                for transaction in transactions:
                    if transaction.response_received(message, (addr[0], addr[1])):
                        break
    for transaction in transactions:
        host, port = transaction.server
        answers.puncher[f"{host}:{port}"] = transaction.mapped or transaction.error or "no answer"


async def ask_everyone() -> Answers:
    answers = Answers()
    await asyncio.gather(
        ask_with_puncher(answers), *(ask_with_agent(url, answers) for url in SERVERS)
    )
    return answers


@pytest.fixture(scope="module")
def answers() -> Answers:
    addresses, errors = resolve_all(DNS_TIMEOUT)
    if not addresses:
        why = "; ".join(f"{host}: {error}" for host, error in sorted(errors.items()))
        pytest.fail(NO_INTERNET.format(why=f"DNS failed ({why})"), pytrace=False)
    started = time.monotonic()
    result = asyncio.run(ask_everyone())
    if (
        not result.mapped("agent")
        and not result.mapped("puncher")
        and "no NAT" not in result.agent.values()
    ):
        why = "; ".join(f"{k}: {v}" for k, v in {**result.agent, **result.puncher}.items())
        pytest.fail(
            NO_INTERNET.format(
                why=f"no STUN server answered within {time.monotonic() - started:.1f} s ({why})"
            ),
            pytrace=False,
        )
    return result


def test_the_ice_agent_learns_the_public_address(answers):
    learned = answers.mapped("agent")
    no_nat = [url for url, v in answers.agent.items() if v == "no NAT"]
    assert len(learned) + len(no_nat) >= ENOUGH, f"too few answers: {answers.agent}"
    for url, (address, port) in learned.items():
        ip = ipaddress.ip_address(address)
        assert ip.version == 4 and ip.is_global, f"{url} says we are {address}"
        assert 0 < port < 65536


def test_the_punchers_stun_client_learns_the_public_address(answers):
    learned = answers.mapped("puncher")
    assert len(learned) >= ENOUGH, f"too few answers: {answers.puncher}"
    for server, (address, _port) in learned.items():
        ip = ipaddress.ip_address(address)
        assert ip.version == 4 and ip.is_global, f"{server} says we are {address}"


def test_every_server_and_both_clients_see_the_same_public_address(answers):
    seen = {f"agent via {k}": v[0] for k, v in answers.mapped("agent").items()}
    seen |= {f"puncher via {k}": v[0] for k, v in answers.mapped("puncher").items()}
    if answers.agent_hosts:  # no NAT: the public address is a host address
        assert set(seen.values()) <= answers.agent_hosts, (seen, answers.agent_hosts)
    else:
        assert len(set(seen.values())) == 1, f"the answers disagree: {seen}"
