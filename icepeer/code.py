"""Short codes to read aloud: ``7-guitar-ribbon``. No I/O.

A code is a *nameplate* and a *password*. The nameplate (a small number) is
the only part the signaling server ever sees: it names the room
(``code-7``). The words are the password of the PAKE (:mod:`icepeer.pake`):
never sent anywhere. Two words from :data:`WORDS` (256 of them) give 16
bits, as magic-wormhole's codes do: enough, because a PAKE allows one
online guess per code and no offline guessing at all, and a failed guess
burns the code.

The side that makes a code picks the words at random and a nameplate that
is free on the server (:func:`nameplate_candidates`); the other side types
the whole code. A word with a typo is reported with what it probably was.
"""

from __future__ import annotations

import difflib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["Code", "WORDS", "parse_code", "new_code", "nameplate_candidates", "room_of"]

WORDS: tuple[str, ...] = tuple(
    """
apple arrow badge bagel banjo barn basil beach beard bell bench berry bison blade blanket bloom
board bonus boot bottle bread brick bridge brush bucket bugle button cabin cable cactus camel
camera candle canoe canyon carbon carpet carrot castle cedar cello chalk cherry chess cider circle
cliff clock cloud clover coast comet copper coral cotton crane crayon cricket crown cup curtain
cushion daisy delta desert diamond dinner dolphin donkey dragon drum eagle echo elbow ember engine
fabric falcon feather fern field finch flame flute forest fossil fountain fox frost garden garlic
gecko giant ginger glacier globe goat grape gravel guitar hammer harbor harp hazel helmet heron
hill honey hornet horse island ivory jacket jade jaguar jasmine jewel jungle kayak kettle kiwi
koala ladder lagoon lamp lantern lava lemon library lily lime linen lion lizard lobster locket
lotus magnet mango maple marble meadow melon mirror mitten monkey moon moss motor mountain muffin
needle nest noodle oak oasis ocean olive onion orange orbit orchid otter owl paddle palm panda
paper parrot pasta peach pearl pebble pencil pepper piano pickle pigeon pillow pine pirate planet
plum pocket pony poppy potato prism pumpkin puzzle quartz quilt rabbit radar radio raft rain raven
ribbon river robin rocket rose ruby saddle salmon sand scarf shadow shell silver sketch sled snow
socket spider spoon spruce squid star stone storm sugar summit sun swan table teapot tiger timber
tomato topaz torch tower trail tulip tunnel turtle umbrella valley velvet violin volcano wagon
walnut walrus water whale wheat willow window winter wizard wolf zebra zipper
""".split()  # noqa: SIM905 - a word list reads best as words
)
assert len(WORDS) == 256 and len(set(WORDS)) == 256

_WORD_SET = frozenset(WORDS)
_CODE = re.compile(r"([0-9]{1,6})-([a-z]+)-([a-z]+)")
ROOM_PREFIX = "code-"


@dataclass(frozen=True)
class Code:
    """A nameplate (``None`` until one is picked on the server) and the password words."""

    nameplate: int | None
    words: tuple[str, ...]

    @property
    def password(self) -> bytes:
        return "-".join(self.words).encode()

    @property
    def room(self) -> str:
        assert self.nameplate is not None, "no nameplate yet"
        return room_of(self.nameplate)

    def with_nameplate(self, nameplate: int) -> Code:
        return Code(nameplate, self.words)

    def __str__(self) -> str:
        return "-".join([str(self.nameplate if self.nameplate is not None else "?"), *self.words])


def room_of(nameplate: int) -> str:
    return f"{ROOM_PREFIX}{nameplate}"


def new_code() -> Code:
    """Fresh password words; the nameplate is picked on the server when connecting."""
    return Code(None, tuple(secrets.choice(WORDS) for _ in range(2)))


def parse_code(text: str) -> Code:
    """``7-guitar-ribbon`` (case and spaces forgiven); :class:`ConfigError` saying what is wrong."""
    cleaned = "-".join(text.strip().lower().replace(" ", "-").split("-"))
    match = _CODE.fullmatch(cleaned)
    if match is None:
        raise ConfigError(f"not a code: {text!r} (a code looks like 7-guitar-ribbon)")
    nameplate, *words = match.groups()
    for word in words:
        if word not in _WORD_SET:
            close = difflib.get_close_matches(word, WORDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{word!r} is not a word of icepeer's codes{hint}")
    value = int(nameplate)
    if value < 1:
        raise ConfigError(f"bad nameplate {nameplate!r} in {text!r}: codes start at 1")
    return Code(value, tuple(words))


def nameplate_candidates() -> Iterator[int]:
    """Nameplates to try, small ones first: a few from 1-99, then 100-999, then wider."""
    for top in (99, 999, 9999, 99999):
        for _ in range(8):
            yield 1 + secrets.randbelow(top)
