"""Rooms in Redis, shared by any number of server processes: the asyncio glue.

:class:`~signaling.cluster.ClusterRooms` decides; this module runs the
atomic Lua scripts with redis-py (a script runs alone in Redis, so two peers
racing for the last seat cannot both get it), moves envelopes between nodes
over pub/sub (:mod:`signaling.redis_pubsub`: one channel per node, each
node's publications in one ordered connection), and keeps the node alive in
Redis.

Keys, all under ``icepeer:``:

==================  ======  =================================================
``room:<name>``     hash    peer id -> node id: the room's members
``node:<id>``       hash    peer id -> room: the node's peers (for reaping)
``nodes``           zset    node id, scored by the time (ms) it is declared dead
``epoch``           string  random, set when the data set is new: a Redis that
                            restarted empty has none (or another)
``to:<id>``         channel envelopes for the node's peers
==================  ======  =================================================

Liveness: each node renews its score every ``node_ttl / 4`` seconds and
reaps nodes whose score has passed (one script per dead node: its peers leave
their rooms, and the reaper sends their room mates ``peer-left``). A killed
process's peers are therefore gone within ``node_ttl`` plus one beat.

Redis out of reach: joins are answered ``unavailable``, signals to peers on
other nodes too; signals between peers of this node and every open
connection carry on. Envelopes that could not be published, and those
published while this node was not subscribed, are lost. When Redis answers
again the node subscribes again, writes its peers back if Redis lost them
(restart without persistence), tells the others about peers that left
meanwhile, and compares each of its rooms with Redis (now, and once more
after ``node_ttl``, when every live node has written its peers back).

This needs one Redis (a primary; a replica promoted by hand or by Sentinel
looks like a restart that lost the last writes), not Redis Cluster: the
scripts touch keys of several rooms. With Sentinel, point ``--redis`` at
the current primary's address (a floating IP or DNS name).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .cluster import ClusterRooms, Departure, Effects
from .protocol import ClientMessage, Join, Leave, ServerMessage, Signal
from .redis_pubsub import Publisher, PubSubError, Subscriber
from .redis_scripts import BEAT as _BEAT
from .redis_scripts import JOIN as _JOIN
from .redis_scripts import LEAVE as _LEAVE
from .redis_scripts import REAP as _REAP
from .redis_scripts import RESTORE as _RESTORE
from .rooms import Session

__all__ = ["RedisRooms", "PREFIX"]

logger = logging.getLogger(__name__)

PREFIX = "icepeer:"
#: Connections to Redis per server process for scripts and publishing.
POOL_SIZE = 32

Deliver = Callable[[Session, ServerMessage | str], None]


def _pairs(flat: list[Any], start: int = 0) -> dict[str, str]:
    return {_s(flat[i]): _s(flat[i + 1]) for i in range(start, len(flat) - 1, 2)}


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisRooms:
    """The room backend of ``python -m signaling --redis URL``."""

    def __init__(
        self,
        config: Any,
        deliver: Deliver,
        *,
        on_reaped: Callable[[Session], None],
        node_id: str | None = None,
    ) -> None:
        self.url: str = config.redis
        self.node_ttl: float = config.redis_node_ttl
        self.node_id = node_id or secrets.token_hex(8)
        self.state = ClusterRooms(
            self.node_id, room_size=config.room_size, ice_servers=config.ice_servers_for,
            ice_servers_ttl=config.ice_servers_ttl,
        )
        self._deliver = deliver
        self._on_reaped = on_reaped
        self._beat_every = max(0.5, self.node_ttl / 4)
        self._redis: aioredis.Redis | None = None
        self._epoch = ""
        #: True while Redis answers and this node is subscribed to its channel.
        self.available = False
        self._up = asyncio.Event()
        self._outgoing: deque[tuple[str, str]] = deque()
        self._flush_scheduled = False
        self._publisher = Publisher(self.url, on_lost=self._lost_redis)
        self._subscriber = Subscriber(self.url, PREFIX + "to:" + self.node_id,
                                      on_message=self._message, on_lost=self._lost_redis)
        self._pending_departures: list[Departure] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._reconcile_later: asyncio.TimerHandle | None = None
        self._data_lost = False
        self._closing = False
        self._last_error = ""
        self.lost = 0  # envelopes that could not be published
        self.reaped_peers = 0
        self.outages = 0

    # -- RoomBackend --------------------------------------------------------

    @property
    def room_count(self) -> int:
        return self.state.room_count

    @property
    def relayed(self) -> int:
        return self.state.relayed

    async def start(self) -> None:
        kwargs: dict[str, Any] = {"socket_connect_timeout": 2.0, "health_check_interval": 0}
        # A bounded pool that makes a burst of joins or leaves (thousands at once
        # when a server shuts down) wait their turn instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=POOL_SIZE, timeout=5.0, socket_timeout=2.0, **kwargs
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._join_script = self._redis.register_script(_JOIN)
        self._leave_script = self._redis.register_script(_LEAVE)
        self._beat_script = self._redis.register_script(_BEAT)
        self._restore_script = self._redis.register_script(_RESTORE)
        self._reap_script = self._redis.register_script(_REAP)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._keepalive())]
        # Serve at once if Redis is there; otherwise refuse joins until it is.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                await self._up.wait()
        if not self.available:
            logger.warning("Redis at %s does not answer yet (%s): joins get 'unavailable' until it does",
                           _redacted(self.url), self._last_error or "no reply")

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        # redis-py may swallow a cancellation in the middle of a command; the
        # loops also stop on _closing, and nobody waits for them for long.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if self._reconcile_later is not None:
            self._reconcile_later.cancel()
        if self._redis is not None:
            # A clean stop: leave Redis as if this node's peers had all left.
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(2):
                    for session in list(self.state.local.values()):
                        await self._leave(session)
                    self._flush()
                    await self._redis.zrem(PREFIX + "nodes", self.node_id)
            await self._redis.aclose()
        self._publisher.close()
        self._subscriber.close()

    async def receive(self, session: Session, message: ClientMessage) -> None:
        if isinstance(message, Join):
            await self._join(session, message.room)
        elif isinstance(message, Signal):
            self._apply(self.state.signal(session, message, remote_ok=self.available))
        elif isinstance(message, Leave):
            await self._leave(session)

    async def disconnect(self, session: Session) -> None:
        await self._leave(session)

    def metrics_lines(self) -> list[str]:
        return [
            "# HELP icepeer_signaling_redis_up 1 while Redis answers and this process is subscribed.",
            "# TYPE icepeer_signaling_redis_up gauge",
            f"icepeer_signaling_redis_up {int(self.available)}",
            "# HELP icepeer_signaling_redis_outages_total Times this process lost Redis.",
            "# TYPE icepeer_signaling_redis_outages_total counter",
            f"icepeer_signaling_redis_outages_total {self.outages}",
            "# HELP icepeer_signaling_redis_lost_total Envelopes for other processes that could not be published.",
            "# TYPE icepeer_signaling_redis_lost_total counter",
            f"icepeer_signaling_redis_lost_total {self.lost}",
            "# HELP icepeer_signaling_reaped_peers_total Peers of dead processes this process reaped.",
            "# TYPE icepeer_signaling_reaped_peers_total counter",
            f"icepeer_signaling_reaped_peers_total {self.reaped_peers}",
        ]

    # -- membership ---------------------------------------------------------

    async def _join(self, session: Session, room: str) -> None:
        claim = self.state.begin_join(session)
        if not isinstance(claim, str):
            self._deliver(session, claim)
            return
        peer_id = claim
        if not self.available:
            self._apply(self.state.abort_join(session, peer_id))
            return
        assert self._redis is not None
        try:
            reply = await self._join_script(
                keys=[PREFIX + "nodes", PREFIX + "room:" + room, PREFIX + "node:" + self.node_id],
                args=[self.node_id, peer_id, self.state.room_size, room],
            )
        except (RedisError, OSError) as exc:
            self._lost_redis(exc)
            self._apply(self.state.abort_join(session, peer_id))
            # The script may have run before the connection failed: free the
            # seat when Redis is back (a leave of a peer it never had is harmless).
            self._pending_departures.append(Departure(room, peer_id, {}))
            return
        status = _s(reply[0])
        if status == "gone":
            # This node is not registered (Redis restarted a moment ago): not yet.
            self._apply(self.state.abort_join(session, peer_id))
            return
        members = None if status == "full" else _pairs(reply, 1)
        self._apply(self.state.finish_join(session, room, peer_id, members))

    async def _leave(self, session: Session) -> None:
        departure = self.state.begin_leave(session)
        if departure is None:
            return
        self._apply(self.state.leave_locally(departure))
        if not self.available:
            self._pending_departures.append(departure)
            return
        remaining = await self._run_leave(departure)
        if remaining is None:
            self._pending_departures.append(departure)
            return
        self._apply(self.state.leave_remotely(departure, remaining))

    async def _run_leave(self, departure: Departure) -> dict[str, str] | None:
        assert self._redis is not None
        try:
            reply = await self._leave_script(
                keys=[PREFIX + "room:" + departure.room, PREFIX + "node:" + self.node_id],
                args=[departure.peer_id],
            )
        except (RedisError, OSError) as exc:
            self._lost_redis(exc)
            return None
        return _pairs(reply)

    # -- delivery -------------------------------------------------------------

    def _apply(self, effects: Effects) -> None:
        for session, message in effects.local:
            self._deliver(session, message)
        if effects.remote:
            self._outgoing.extend(effects.remote)
            if not self._flush_scheduled:
                # Once per pass of the event loop: everything queued meanwhile
                # goes out in one write, one PUBLISH per node.
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outgoing:
            return
        batch: dict[str, list[str]] = {}
        count = len(self._outgoing)
        for node, envelope in self._outgoing:
            batch.setdefault(node, []).append(envelope)
        self._outgoing.clear()
        messages = [(PREFIX + "to:" + node, "\n".join(envelopes)) for node, envelopes in batch.items()]
        if not self.available or not self._publisher.publish(messages):
            self.lost += count

    def _message(self, payload: bytes) -> None:
        """Envelopes from other nodes, as one pub/sub message."""
        self._apply(self.state.receive_batch(payload.decode("utf-8", "replace").split("\n")))

    # -- liveness and recovery ------------------------------------------------

    def _lost_redis(self, exc: BaseException) -> None:
        self._last_error = str(exc) or type(exc).__name__
        if self.available:
            self.outages += 1
            logger.warning("lost Redis (%s): joins get 'unavailable' until it is back", exc)
        self.available = False
        self._up.clear()

    async def _keepalive(self) -> None:
        while not self._closing:
            try:
                await self._beat()
                if self.available:
                    await self._reap()
            except (RedisError, OSError) as exc:
                self._lost_redis(exc)
            # Down: knock again soon, so that service resumes quickly.
            await asyncio.sleep(self._beat_every if self.available else 0.25)

    async def _beat(self) -> None:
        assert self._redis is not None
        reply = await self._beat_script(
            keys=[PREFIX + "nodes", PREFIX + "epoch"],
            args=[self.node_id, int(self.node_ttl * 1000), self._epoch, secrets.token_hex(8)],
        )
        status, epoch = _s(reply[0]), _s(reply[1])
        if status == "ok" and self.available:
            return
        if status == "reaped":
            # Cut off for longer than node_ttl: the others were told our peers left.
            sessions = self.state.forget_all()
            logger.error("this process was declared dead while cut off from Redis: closing its %d "
                         "peers (1012)", len(sessions))
            for session in sessions:
                self._on_reaped(session)
            self._pending_departures.clear()
            self._epoch = ""  # register again, with no peers
            await self._beat()
            return
        self._epoch = epoch
        if status == "new":
            await self._restore()
            self._data_lost = True
        await self._recover()

    async def _restore(self) -> None:
        """Write this node's peers back into a Redis that lost them."""
        assert self._redis is not None
        entries = self.state.memberships()
        if entries:
            logger.warning("Redis lost its data: writing back %d peers", len(entries))
        for i in range(0, len(entries), 500):
            args: list[str] = [PREFIX, self.node_id]
            for room, peer in entries[i:i + 500]:
                args += [room, peer]
            await self._restore_script(keys=[PREFIX + "node:" + self.node_id], args=args)

    async def _recover(self) -> None:
        """Redis answers again: news for the others, then compare rooms."""
        try:
            # Subscribed before anything is announced, so no news is missed.
            if not self._subscriber.connected:
                await self._subscriber.connect()
            if not self._publisher.connected:
                await self._publisher.connect()
        except PubSubError as exc:
            raise OSError(str(exc)) from exc
        was_down = not self.available
        # Available from here on: the news below must be published, not dropped.
        self.available = True
        self._up.set()
        departures, self._pending_departures = self._pending_departures, []
        news = Effects()
        for i, departure in enumerate(departures):
            remaining = await self._run_leave(departure)
            if remaining is None:
                self._pending_departures += departures[i:]
                raise OSError("Redis went away again during recovery")
            news.extend(self.state.leave_remotely(departure, remaining))
        if news.remote:
            self._apply(news)
            # Another process coming back at the same moment may not be
            # subscribed again yet, and pub/sub keeps nothing for it: say it
            # once more a little later (a peer-left heard twice is told once).
            asyncio.get_running_loop().call_later(self._beat_every + 0.5, self._apply, news)
        if was_down and not self.outages:
            logger.info("connected to Redis at %s as node %s", _redacted(self.url), self.node_id)
            self._data_lost = False  # a new data set, not a lost one
        elif was_down:
            logger.info("Redis is back: serving joins again")
            # If Redis lost its data, the other nodes write their peers back
            # within a beat or so: until then a peer missing from Redis may only
            # be late, so only newcomers are taken from it now. Once every live
            # node has had its chance, look again and believe it.
            await self._reconcile(additions_only=self._data_lost)
            self._data_lost = False
            if self._reconcile_later is not None:
                self._reconcile_later.cancel()
            loop = asyncio.get_running_loop()
            self._reconcile_later = loop.call_later(
                self.node_ttl + self._beat_every,
                lambda: self._tasks.append(loop.create_task(self._reconcile_quietly())),
            )

    async def _reconcile_quietly(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._reconcile()

    async def _reconcile(self, *, additions_only: bool = False) -> None:
        assert self._redis is not None
        rooms = list(self.state.rooms)
        for i in range(0, len(rooms), 500):
            chunk = rooms[i:i + 500]
            versions = [self.state.version(room) for room in chunk]
            async with self._redis.pipeline(transaction=False) as pipe:
                for room in chunk:
                    pipe.hgetall(PREFIX + "room:" + room)
                replies = await pipe.execute()
            for room, version, reply in zip(chunk, versions, replies):
                members = {_s(k): _s(v) for k, v in reply.items()}
                self._apply(self.state.reconcile(room, members, version, additions_only=additions_only))

    async def _reap(self) -> None:
        """Remove the peers of nodes that stopped beating; tell their room mates."""
        assert self._redis is not None
        for _ in range(100):  # at most this many dead nodes per beat
            reply = await self._reap_script(keys=[PREFIX + "nodes"], args=[PREFIX])
            if not reply:
                return
            flat = [_s(x) for x in reply]
            node, i, count = flat[0], 1, 0
            while i < len(flat):
                room, peer, n = flat[i], flat[i + 1], int(flat[i + 2])
                remaining = _pairs(flat[i + 3:i + 3 + 2 * n])
                self._apply(self.state.reaped(room, peer, remaining))
                i += 3 + 2 * n
                count += 1
            self.reaped_peers += count
            logger.warning("reaped node %s (no heartbeat for %ss): %d peers left their rooms",
                           node, self.node_ttl, count)


def _redacted(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"
