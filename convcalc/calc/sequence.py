"""A network as text: layer specs in order, with groups, names and repeats.

Words are separated by whitespace (in a network file, across lines, ``#`` comments);
on the command line each argument may hold several words. Besides layer specs
(`convcalc.calc.grammar.parse_spec`):

    ( A | B | C ) MERGE   parallel branches from the current tensor, merged by
                          ``concat``, ``add`` or ``mul``; an empty branch is the
                          identity; groups nest
    ( A B C )             without a merge: just those layers, in a row (so that
                          ``( A B C ) *N`` repeats all three)
    @NAME                 names the current tensor, for ``concat:NAME`` and the like
    *N                    after a layer, a group or a ( sequence ): N of it in a row

``(`` may start a word and ``)`` end one (``(conv:64,1``, ``relu)``); ``|`` stands
alone or at either end of a word, so a kernel's channel bar (``k=1,0|0,1``) stays
inside its spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from convcalc.calc.grammar import parse_spec
from convcalc.calc.layer_table import MERGES
from convcalc.calc.layers import Group, Mark, Spec
from convcalc.errors import ConvcalcError

MAX_REPEAT = 1000
"""``*N`` takes N from 1 to this."""

MAX_LAYERS = 100_000
"""A network holds at most this many layers once its repeats are written out."""


class Word(NamedTuple):
    """One word of a network's text and where it was written (``net.txt:3``)."""

    text: str
    where: str


def parse_specs(texts: Iterable[str], source: str = "argument") -> list[Spec]:
    """Read the layers given as command-line arguments (each may hold several words)."""
    words = [
        Word(word, f"{source} {i}")
        for i, text in enumerate(texts, start=1)
        for word in _split(text)
    ]
    return parse_words(words)


def parse_network(text: str, source: str) -> list[Spec]:
    """Read a network file: words separated by whitespace or lines, ``#`` comments."""
    words = [
        Word(word, f"{source}:{number}")
        for number, line in enumerate(text.splitlines(), start=1)
        for word in _split(line.split("#", 1)[0])
    ]
    if not words:
        raise ConvcalcError(f"{source} holds no layer specs; write one per line, e.g. conv:6,5")
    return parse_words(words)


def parse_words(words: list[Word]) -> list[Spec]:
    """The specs of a whole network; groups become `Group` layers, ``@NAME`` `Mark`s."""
    specs, end = _sequence(words, 0)
    if _size(specs) > MAX_LAYERS:
        raise ConvcalcError(f"the network holds over {MAX_LAYERS:,} layers; valid: fewer")
    if end < len(words):
        word = words[end]
        raise ConvcalcError(f"{word.where}: '{word.text}' outside a group; valid: ( A | B ) concat")
    return specs


# -- the recursive descent ----------------------------------------------------------


def _sequence(words: list[Word], at: int) -> tuple[list[Spec], int]:
    """Specs up to the end, or to the ``|`` or ``)`` that ends a branch."""
    specs: list[Spec] = []
    last: list[Spec] = []  # what a *N repeats: the last layer, group or ( sequence )
    while at < len(words) and words[at].text not in ("|", ")"):
        word = words[at]
        if word.text == "(":
            last, at = _group(words, at)
            specs += last
            continue
        if word.text.startswith("@"):
            last = []
            specs.append(_mark(word))
        elif word.text.startswith("*"):
            specs += _repeats(last, word)
            last = []  # ( A ) *3 *3 would repeat the repeats: write ( ( A ) *3 ) *3
        else:
            last = [parse_spec(word.text, word.where)]
            specs += last
        at += 1
    return specs, at


def _group(words: list[Word], at: int) -> tuple[list[Spec], int]:
    """A group ending in a merge (one `Group` spec), or a ( sequence ) without one
    (its specs, in a row)."""
    opening = words[at]
    branches: list[tuple[Spec, ...]] = []
    while True:
        branch, at = _sequence(words, at + 1)
        branches.append(tuple(branch))
        if at >= len(words):
            raise ConvcalcError(
                f"{opening.where}: the group opened here is never closed; valid: ( A | B ) concat"
            )
        if words[at].text == ")":
            break
    merge = words[at + 1].text.lower() if at + 1 < len(words) else ""
    if merge not in MERGES:
        if len(branches) == 1:
            return list(branches[0]), at + 1
        raise ConvcalcError(
            f"{words[at].where}: branches must end in a merge, not '{merge or 'nothing'}'; "
            f"valid: ( A | B ) {' | '.join(MERGES)}"
        )
    group = Group(tuple(branches), merge)
    count = f"{len(branches)} branch" + ("es" if len(branches) > 1 else "")
    return [Spec(f"( {count} ) {merge}", group, opening.where)], at + 2


def _mark(word: Word) -> Spec:
    name = word.text[1:]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConvcalcError(
            f"{word.where}: '{word.text}' is not a name; valid: @ then letters, digits and _"
        )
    return Spec(word.text, Mark(name), word.where)


def _repeats(last: list[Spec], word: Word) -> list[Spec]:
    """``last`` (already written once) N - 1 more times."""
    count = word.text[1:]
    if not last:
        raise ConvcalcError(
            f"{word.where}: '{word.text}' repeats nothing; write it after a layer, a group or "
            "a ( sequence )"
        )
    if not count.isdigit() or not 1 <= int(count) <= MAX_REPEAT:
        raise ConvcalcError(
            f"{word.where}: '{word.text}' is not a repeat; valid: *N with N from 1 to {MAX_REPEAT}"
        )
    total = _size(last) * int(count)
    if total > MAX_LAYERS:
        raise ConvcalcError(
            f"{word.where}: '{word.text}' makes {total:,} layers; valid: at most "
            f"{MAX_LAYERS:,} in all"
        )
    return last * (int(count) - 1)


def _size(specs: list[Spec]) -> int:
    """How many layers ``specs`` hold, the ones inside groups included."""
    return sum(
        1 + (sum(_size(list(b)) for b in spec.layer.branches)
             if isinstance(spec.layer, Group) else 0)
        for spec in specs
    )  # fmt: skip


def _split(text: str) -> list[str]:
    """Whitespace-separated words, with ``(`` at a word's start and ``)``, ``*N`` at its
    end, and ``|`` at either end, split off as words of their own."""
    words: list[str] = []
    for word in text.split():
        head: list[str] = []
        while len(word) > 1 and word[0] in "(|":
            head.append(word[0])
            word = word[1:]
        tail: list[str] = []
        while len(word) > 1:
            repeat = re.search(r"\*\d+$", word)
            if repeat and repeat.start() > 0:
                tail.insert(0, repeat.group())
                word = word[: repeat.start()]
            elif word[-1] in ")|":
                tail.insert(0, word[-1])
                word = word[:-1]
            else:
                break
        words += [*head, word, *tail]
    return words
