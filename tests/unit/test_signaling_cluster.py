"""ClusterRooms (one node's decisions, no I/O), the connection caps and the outbox,
by plain calls. The Redis scripts' answers are written out by hand here; the
scripts themselves run against a real redis-server in
tests/integration/test_signaling_redis.py."""

import asyncio
import itertools

import pytest

from signaling.cluster import ClusterRooms, Effects
from signaling.limits import ConnectionLimiter, Refusal, address_key
from signaling.outbox import Outbox
from signaling.protocol import Error, Joined, PeerJoined, PeerLeft, Relayed, Signal
from signaling.rooms import Session


def node(name, **kw):
    counter = itertools.count()
    return ClusterRooms(name, new_id=lambda: f"{name}-p{next(counter)}", **kw)


def wire(effects: Effects, nodes: dict[str, ClusterRooms]) -> list:
    """Deliver envelopes to their nodes, as Redis pub/sub would; return every local frame."""
    frames = list(effects.local)
    for target, envelope in effects.remote:
        frames += wire(nodes[target].receive(envelope), nodes)
    return frames


def test_join_across_nodes_and_signals_in_order():
    n1, n2 = node("n1"), node("n2")
    nodes = {"n1": n1, "n2": n2}
    a, b = Session(), Session()
    pa = n1.begin_join(a)
    assert wire(n1.finish_join(a, "r", pa, {}), nodes) == [(a, Joined("r", pa, ()))]
    pb = n2.begin_join(b)
    out = wire(n2.finish_join(b, "r", pb, {pa: "n1"}), nodes)
    assert out == [(b, Joined("r", pb, (pa,))), (a, PeerJoined(pb))]
    # Signals both ways, through envelopes, in order; the frame is built once by the sender's node.
    frames = []
    for i in range(5):
        frames += wire(n1.signal(a, Signal(pb, {"i": i})), nodes)
    assert frames == [(b, Relayed(pa, {"i": i}).to_json()) for i in range(5)]
    assert wire(n2.signal(b, Signal(pa, "x")), nodes) == [(a, Relayed(pb, "x").to_json())]
    assert n1.relayed == 5 and n2.relayed == 1
    # Errors as on one process.
    assert n1.signal(a, Signal("nobody", 1)).local[0][1].code == "unknown-peer"
    assert n1.signal(a, Signal(pa, 1)).local[0][1].code == "unknown-peer"
    assert n1.signal(Session(), Signal(pa, 1)).local[0][1].code == "not-joined"
    assert isinstance(n1.begin_join(a), Error)
    # Redis out of reach: a signal to another node is refused, a local one is not.
    assert n1.signal(a, Signal(pb, 1), remote_ok=False).local[0][1].code == "unavailable"


def test_room_full_and_unavailable_answers():
    n1 = node("n1")
    a = Session()
    pid = n1.begin_join(a)
    ((who, err),) = n1.finish_join(a, "r", pid, None).local
    assert who is a and err.code == "room-full" and not a.joined
    pid = n1.begin_join(a)
    ((who, err),) = n1.abort_join(a, pid).local
    assert err.code == "unavailable" and "Redis" in err.message and not a.joined
    assert n1._pending == {}


def test_news_during_the_join_script_comes_after_joined():
    # B's leave (on n2) ran in Redis after A's join, and its peer-left reached
    # n1 before A's join script returned: A must get joined, then peer-left.
    n1 = node("n1")
    a = Session()
    pa = n1.begin_join(a)
    assert n1.receive(f"L\t{pa}\tn2-p0").local == []
    out = n1.finish_join(a, "r", pa, {"n2-p0": "n2"}).local
    assert out == [(a, Joined("r", pa, ("n2-p0",))), (a, PeerLeft("n2-p0"))]
    assert n1.rooms["r"] == {pa: "n1"}


def test_leave_tells_local_mates_at_once_and_remote_ones_from_redis_and_cache():
    n1, n2 = node("n1"), node("n2")
    a, c, b = Session(), Session(), Session()
    pa = n1.begin_join(a)
    n1.finish_join(a, "r", pa, {})
    pb = n2.begin_join(b)
    wire(n2.finish_join(b, "r", pb, {pa: "n1"}), {"n1": n1, "n2": n2})
    pc = n1.begin_join(c)
    n1.finish_join(c, "r", pc, {pa: "n1", pb: "n2"})
    departure = n1.begin_leave(a)
    assert not a.joined and pa not in n1.local
    assert n1.leave_locally(departure).local == [(c, PeerLeft(pa))]
    # Redis lists a member this node had not heard of yet: it is told too.
    remote = n1.leave_remotely(departure, {pb: "n2", "n3-p9": "n3"}).remote
    assert sorted(remote) == [("n2", f"L\t{pb}\t{pa}"), ("n3", f"L\tn3-p9\t{pa}")]
    assert n2.receive(f"L\t{pb}\t{pa}").local == [(b, PeerLeft(pa))]
    assert n2.receive(f"L\t{pb}\t{pa}").local == []  # heard once only
    assert n1.begin_leave(a) is None


def test_reaped_peers_and_reconcile_after_an_outage():
    n1 = node("n1")
    a = Session()
    pa = n1.begin_join(a)
    n1.finish_join(a, "r", pa, {"dead-p0": "dead"})
    # Another node's reap script removed dead-p0; n1 gets the envelope.
    assert n1.receive(f"L\t{pa}\tdead-p0").local == [(a, PeerLeft("dead-p0"))]
    # n1 reaped a peer itself: its own peer hears directly, others by envelope.
    n1.receive(f"J\t{pa}\tdead-p1\tdead")
    eff = n1.reaped("r", "dead-p1", {pa: "n1", "n2-p0": "n2"})
    assert eff.local == [(a, PeerLeft("dead-p1"))] and eff.remote == [("n2", "L\tn2-p0\tdead-p1")]
    # After an outage Redis is the truth: one peer gone, one new. Right after
    # Redis restarted empty, a missing peer may only be late: nobody is forgotten.
    n1.receive(f"J\t{pa}\tgone-p0\tgone")
    v = n1.version("r")
    assert n1.reconcile("r", {pa: "n1"}, v, additions_only=True).local == []
    out = n1.reconcile("r", {pa: "n1", "new-p0": "new"}, v).local
    assert out == [(a, PeerLeft("gone-p0")), (a, PeerJoined("new-p0"))]
    assert n1.rooms["r"] == {pa: "n1", "new-p0": "new"}
    # Redis's answer is older than news that arrived while it was asked for
    # (here: late-p0 joined): the room is left alone, nobody is told late-p0 left.
    v = n1.version("r")
    n1.receive(f"J\t{pa}\tlate-p0\tn3")
    assert n1.reconcile("r", {pa: "n1", "new-p0": "new"}, v).local == []
    assert "late-p0" in n1.rooms["r"]
    assert n1.memberships() == [("r", pa)]
    assert n1.forget_all() == [a] and not a.joined and n1.room_count == 0


def test_stray_and_hostile_envelopes_are_dropped():
    n1 = node("n1")
    for envelope in ("", "S", "S\tnobody\t{}", "Z\tx\ty", "J\tnobody\tp\tn"):
        assert n1.receive(envelope).local == []
    assert n1.stray == 5


def test_address_key_groups_ipv6_by_64():
    assert address_key("198.51.100.7") == "198.51.100.7"
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("not-an-ip") == "not-an-ip"


def test_connection_limiter():
    limiter = ConnectionLimiter(max_total=3, max_per_address=2)
    assert limiter.admit("198.51.100.1") is None
    assert limiter.admit("198.51.100.1") is None
    assert limiter.admit("198.51.100.1") is Refusal.MAX_PER_IP
    assert limiter.admit("2001:db8::1") is None
    assert limiter.admit("2001:db8::2") is Refusal.MAX_CONNECTIONS
    limiter.release("198.51.100.1")
    assert limiter.admit("2001:db8::2") is None
    assert limiter.admit("2001:db8::3") is Refusal.MAX_CONNECTIONS
    assert limiter.count("2001:db8::ffff") == 2 and limiter.total == 3
    unlimited = ConnectionLimiter()
    assert all(unlimited.admit("198.51.100.1") is None for _ in range(1000))
    with pytest.raises(ValueError):
        ConnectionLimiter(max_per_address=0)


async def test_outbox_keeps_order_and_overflows_once():
    sent, gate = [], asyncio.Event()

    async def send(frame):
        await gate.wait()  # a reader that does not read yet
        sent.append(frame)

    overflows = []
    box = Outbox(send, limit=10, on_overflow=overflows.append)
    assert box.put("aaaa") and box.put("bbbb")
    await asyncio.sleep(0)
    assert box.put("cccc")  # "aaaa" is with the socket: 8 bytes wait
    assert not box.put("dddd") and overflows == [12]
    assert not box.put("e") and overflows == [12] and box.closed
    gate.set()
    await asyncio.sleep(0)
    assert sent == ["aaaa"]
    # One frame larger than the limit still goes through an empty outbox.
    big = Outbox(send, limit=10, on_overflow=overflows.append)
    assert big.put("x" * 100)
    await asyncio.sleep(0)
    assert sent[-1] == "x" * 100
    ordered = Outbox(send, limit=1000, on_overflow=overflows.append)
    for i in range(50):
        ordered.put(str(i))
    await asyncio.sleep(0.01)
    assert sent[-50:] == [str(i) for i in range(50)]
