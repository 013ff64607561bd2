"""JSON as the service accepts it from clients: finite numbers only and a bounded nesting depth.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e999`` (which nothing else can read back: the job,
the tenant's whole job list and the webhook body would stop being JSON), UTF-16 and lone surrogates
(``"\ud800"``, which no UTF-8 store can hold), and nests until the interpreter's recursion limit. All
of it is refused here, before anything is stored.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse, or raise ValueError saying why the text is not acceptable JSON."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data  # strict: no UTF-16, no surrogates
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"JSON nested more than {max_depth} deep") from None
    if depth(value) > max_depth:
        raise ValueError(f"JSON nested more than {max_depth} deep")
    return value


def depth(value: Any) -> int:
    """How deep arrays and objects nest (a scalar is 0), without recursion; a string that UTF-8 cannot
    hold (an escaped lone surrogate) raises ValueError on the way."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, str):
            item.encode("utf-8")  # UnicodeEncodeError is a ValueError
            continue
        children = [*item, *item.values()] if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        todo.extend((child, level + 1) for child in children)
    return deepest


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range for a JSON number")
    return number
