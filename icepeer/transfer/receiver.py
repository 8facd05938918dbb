"""Receiving files from a channel: asyncio glue around :mod:`.protocol` and :mod:`.files`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from ..channel import Channel
from ..errors import ChannelClosed
from .errors import BadManifest, Refused, TransferError, TransferProtocolError
from .files import PartialFile, check_targets
from .manifest import Manifest
from .protocol import (
    ACK_EVERY,
    Abort,
    Accept,
    Ack,
    Assembler,
    Chunk,
    Done,
    FileResult,
    Offer,
    Reject,
    parse,
)

__all__ = ["receive_files"]

logger = logging.getLogger(__name__)


async def _refuse(channel: Channel, exc: TransferError) -> None:
    await channel.send(Reject(str(exc)).to_json())


async def receive_files(
    channel: Channel,
    output: Path,
    *,
    overwrite: bool = False,
    on_offer: Callable[[Manifest], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_file: Callable[[FileResult, Path], None] | None = None,
    offer_timeout: float | None = 30.0,
) -> Done:
    """Take the sender's offer into ``output`` and return what arrived (also sent to the sender).

    Raises :class:`BadManifest` for an offer with unsafe names or over the
    limits and :class:`Refused` when a file exists (without ``overwrite``) or
    space is short; in both cases the sender hears why. A file that fails its
    size or SHA-256 check is reported in the result, not raised.
    """
    try:
        offer = parse(await asyncio.wait_for(channel.recv(), offer_timeout))
    except TimeoutError:
        raise TransferError(f"no offer from the peer within {offer_timeout:g} s: "
                            "is it running 'icepeer send'?") from None
    except ChannelClosed:
        raise TransferError("the connection closed before the sender made an offer") from None
    except BadManifest as exc:
        await _refuse(channel, exc)
        raise
    if not isinstance(offer, Offer):
        raise TransferProtocolError(f"expected an offer, got {type(offer).__name__.lower()}")
    manifest = offer.manifest
    if on_offer is not None:
        on_offer(manifest)
    try:
        check_targets(manifest, output, overwrite=overwrite)
    except Refused as exc:
        await _refuse(channel, exc)
        raise
    await channel.send(Accept().to_json())

    assembler = Assembler([entry.size for entry in manifest.files])
    results: list[FileResult] = []
    partial: PartialFile | None = None
    acked = 0

    async def finish(index: int) -> None:
        nonlocal partial
        entry = manifest.files[index]
        current = partial if partial is not None else PartialFile(output, entry)
        partial = None
        try:
            await asyncio.to_thread(current.flush_and_sync)
            current.check()
            current.publish(overwrite=overwrite)
        except (TransferError, OSError) as exc:
            current.discard()
            reason = str(exc) if isinstance(exc, TransferError) else f"{entry.name!r}: {exc.strerror or exc}"
            logger.warning("%s", reason)
            result = FileResult(entry.name, False, reason)
        else:
            result = FileResult(entry.name, True)
        results.append(result)
        if on_file is not None:
            on_file(result, current.final)

    try:
        pending = assembler.start()
        while True:
            for event in pending:
                if isinstance(event, Chunk):
                    if partial is None:
                        partial = PartialFile(output, manifest.files[event.index])
                    partial.write(event.data)
                else:
                    await finish(event.index)
            ended = any(not isinstance(event, Chunk) for event in pending)
            if assembler.received - acked >= ACK_EVERY or (ended and assembler.received > acked):
                acked = assembler.received
                await channel.send(Ack(acked).to_json())
                if on_progress is not None:
                    on_progress(acked)
            if assembler.done:
                break
            message = await channel.recv()
            if isinstance(message, str):
                control = parse(message)
                if isinstance(control, Abort):
                    raise TransferError(f"the sender aborted: {control.reason}")
                raise TransferProtocolError(f"unexpected {type(control).__name__.lower()} message")
            pending = assembler.feed(message)
    except ChannelClosed:
        raise TransferError("the connection closed during the transfer") from None
    finally:
        if partial is not None:
            partial.discard()
    done = Done(tuple(results))
    await channel.send(done.to_json())
    return done
