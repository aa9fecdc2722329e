"""Input validation shared by every reference layer.

Every public function of `refimpl` validates its arguments with these helpers
*before* any arithmetic, so bad input fails with a message that names the
field, the expected value and the received value, instead of a broadcasting
error deep inside NumPy or, worse, a silently wrong number.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import fields
from numbers import Integral, Real
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

FLOAT_DTYPES = ("float32", "float64")  # what the reference computes in
# What a spec may name as the dtype of the run it describes: the reference computes in float32
# or float64; a framework's run may be in float16 or bfloat16 too, held to the float64 reference.
SPEC_DTYPES = (*FLOAT_DTYPES, "float16", "bfloat16")
_DTYPES = {name: np.dtype(name) for name in FLOAT_DTYPES}
_FLOAT_TYPES = tuple(_DTYPES.values())


def describe(value: Any) -> str:
    """A short description of a received value for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def require_int(field: str, value: Any, *, minimum: int = 1) -> int:
    """An integer (not a bool) that is at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{field}: expected an integer >= {minimum}, received {describe(value)}")
    if value < minimum:
        raise ValueError(f"{field}: expected an integer >= {minimum}, received {value}")
    return int(value)


def require_real(
    field: str, value: Any, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """A finite real number (not a bool) inside [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{field}: expected a real number, received {describe(value)}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{field}: expected a finite number, received {number}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{field}: expected a number >= {minimum}, received {number}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{field}: expected a number <= {maximum}, received {number}")
    return number


def require_instance(field: str, value: Any, cls: type[Any], what: str | None = None) -> Any:
    """An instance of `cls`, e.g. the cache type a backward pass reads (a tuple of the
    same length would unpack, and a cache of the other mode would compute a wrong answer)."""
    if not isinstance(value, cls):
        raise TypeError(f"{field}: expected {what or 'a ' + cls.__name__}, received {describe(value)}")
    return value


def require_choice(field: str, value: Any, choices: Collection[str]) -> str:
    """One of a fixed set of names."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{field}: expected one of {sorted(choices)}, received {describe(value)}")
    return value


def require_array(
    field: str,
    value: Any,
    *,
    shape: Sequence[int | None] | None = None,
    dtype: str | None = None,
    finite: bool = True,
    floating: bool = True,
) -> NDArray[Any]:
    """An ndarray of the given shape (None matches any length) and dtype.

    `floating=True` demands float32 or float64; `finite=True` rejects NaN and inf.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{field}: expected a numpy.ndarray, received {describe(value)}")
    # dtype objects compare faster than their names; these checks run on every layer call
    if floating and value.dtype not in _FLOAT_TYPES:
        raise TypeError(f"{field}: expected dtype float32 or float64, received {value.dtype}")
    if dtype is not None and value.dtype != _DTYPES.get(dtype, dtype):
        raise TypeError(f"{field}: expected dtype {dtype}, received {value.dtype}")
    if shape is not None and (
        value.ndim != len(shape)
        or any(n is not None and n != m for n, m in zip(shape, value.shape, strict=False))
    ):
        lengths = ["*" if n is None else str(n) for n in shape]
        expected = "(" + ", ".join(lengths) + ("," if len(lengths) == 1 else "") + ")"
        raise ValueError(f"{field}: expected shape {expected}, received shape {value.shape}")
    if finite and floating and not np.isfinite(value).all():
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise ValueError(f"{field}: expected finite values, received {bad} non-finite entries")
    return value


def require_labels(field: str, value: Any, *, rows: int, classes: int) -> NDArray[np.int64]:
    """Integer class labels of shape (rows,), each in [0, classes)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        raise TypeError(f"{field}: expected an integer numpy.ndarray, received {describe(value)}")
    if value.shape != (rows,):
        raise ValueError(f"{field}: expected shape ({rows},), received shape {value.shape}")
    if rows and (value.min() < 0 or value.max() >= classes):
        bad = value[(value < 0) | (value >= classes)][0]
        raise ValueError(f"{field}: expected labels in [0, {classes}), received label {bad}")
    return value.astype(np.int64, copy=False)


def require_same_keys(field: str, received: Any, expected: Collection[str]) -> None:
    """A mapping whose keys are exactly `expected`."""
    if not hasattr(received, "keys"):
        raise TypeError(f"{field}: expected a dict of arrays, received {describe(received)}")
    keys = set(received.keys())
    if keys != set(expected):
        missing = sorted(set(expected) - keys)
        extra = sorted(keys - set(expected))
        raise ValueError(
            f"{field}: expected keys {sorted(expected)}, received {sorted(keys)}"
            f" (missing {missing}, unexpected {extra})"
        )


def json_fields(cls: Any, text: Any, field: str = "spec") -> dict[str, Any]:
    """The fields of a frozen-dataclass spec from its JSON text, checked against `cls`.

    Malformed JSON, a non-object and unknown field names raise ValueError/TypeError
    naming `field`; the values themselves are checked by the class's __post_init__.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{field}: expected JSON text, received {describe(text)} ({err})") from None
    if not isinstance(data, dict):
        raise TypeError(f"{field}: expected a JSON object, received {describe(data)}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{field}: expected fields among {sorted(known)}, received {unknown}")
    return data


def raise_if_overflowed(err: ValueError, field: str, what: str, value: Any) -> NoReturn:
    """Inside a forward or backward pass, the intermediate `value` (`what`) failed a check.

    If it has non-finite entries, the pass overflowed although every argument was finite:
    raise a ValueError naming `field`, the arguments at fault, instead of an internal name.
    Otherwise re-raise `err` (a check that cannot fail on computed values, kept honest).
    """
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise ValueError(
            f"{field}: expected values with which {what} stays within {value.dtype}'s range,"
            f" received ones with which it has {bad} non-finite entries (the pass overflowed)"
        ) from None
    raise err
