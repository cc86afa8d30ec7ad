"""Kubernetes resource quantities ("8Gi", "500m", 2) as plain numbers, without the API machinery.

The CRD accepts quantities as int-or-string with the same pattern the Kubernetes API uses, so every
value that passes admission parses here.
"""

from __future__ import annotations

import math
import re
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, DivisionByZero, InvalidOperation, localcontext

# The quantity grammar of k8s.io/apimachinery/pkg/api/resource (as controller-gen emits it), without
# the sign: no size llmstage accepts (CPU, memory, GPU memory, cache) can be negative.
QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)
# The same grammar with names on its parts.
_PARTS = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>[KMGTPE]i|[numkMGTPE])|[eE](?P<exponent>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)))?$"
)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
            "P": Decimal(10**15), "E": Decimal(10**18)}  # fmt: skip

GIB = 2**30


def is_quantity(value: str | int) -> bool:
    return isinstance(value, int) or bool(_QUANTITY.match(value))


def parse_quantity(value: str | int) -> Decimal:
    """'8Gi' -> 8589934592, '500m' -> 0.5, '1e3' -> 1000, 2 -> 2. Raises ValueError for anything else."""
    if isinstance(value, int):
        return Decimal(value)
    match = _PARTS.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 8Gi, 500m, 2)")
    number, suffix, exponent = Decimal(match["number"]), match["suffix"] or "", match["exponent"]
    # The grammar admits "1e999999", exponents beyond any Decimal's ("1e1000000000000000000") and
    # fractional ones ("0E.0"): a result too large is Infinity (never within a size limit), one too
    # small is 0, instead of decimal.Overflow.
    with localcontext(
        Context(prec=40, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation, DivisionByZero])
    ):
        if exponent is not None:
            return number * Decimal(10) ** Decimal(exponent)
        return number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def gib(value: str | int) -> float:
    """A memory quantity in GiB."""
    return float(parse_quantity(value)) / GIB


def format_gib(amount_gib: float) -> str:
    """Round up to whole GiB: requests should never be smaller than the computed need."""
    return f"{max(1, math.ceil(amount_gib - 1e-9))}Gi"
