"""Handing due work to workers exactly once, however many clocks on however many hosts look."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Model


def hand_over(
    model: type[Model],
    due: Iterable[tuple[Any, Any]],
    *,
    field: str,
    to: Any,
    enqueue: Callable[[Any], object],
    **still: Any,
) -> int:
    """Hand each due row (its pk and the value of `field` as read) to a worker: a row is this
    caller's only if its conditional UPDATE moves `field` from that value to `to` while `still`
    holds, so of two clocks only one hands it over. Returns how many were handed over."""
    handed = 0
    for pk, seen in due:
        if model._default_manager.filter(pk=pk, **still, **{field: seen}).update(**{field: to}):
            enqueue(pk)
            handed += 1
    return handed
