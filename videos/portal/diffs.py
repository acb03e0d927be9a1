"""What changed between two versions of a prompt, word by word."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

WORDS = re.compile(r"\S+|\s+")


@dataclass(frozen=True)
class Piece:
    text: str
    change: str  # "", "added" or "removed"


def word_changes(before: str, after: str) -> list[Piece]:
    """`after` as pieces, with what `before` had instead marked removed, in reading order."""
    old, new = WORDS.findall(before), WORDS.findall(after)
    pieces: list[Piece] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(Piece("".join(new[b1:b2]), ""))
            continue
        if op in ("delete", "replace"):
            pieces.append(Piece("".join(old[a1:a2]), "removed"))
        if op in ("insert", "replace"):
            pieces.append(Piece("".join(new[b1:b2]), "added"))
    return pieces
