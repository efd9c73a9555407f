"""kubectl's ways of printing: columns three spaces apart, ages such as `5d3h`,
quantities such as `250m` and `512Mi`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation

NONE = "<none>"
SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
QUANTITY = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)"
)


def quantity(text: object) -> Decimal:
    """A Kubernetes quantity (`250m`, `1.5Gi`, `123456789n`, `1e3`) as a number."""
    m = QUANTITY.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    number, exponent, suffix = m.groups()
    try:
        value = Decimal(number)
        if exponent:
            return value * (Decimal(10) ** int(exponent[1:]))
        return value * SUFFIXES[suffix or ""]
    except InvalidOperation:
        raise ValueError(f"not a quantity: {text!r}") from None


def millicores(text: object) -> int:
    """kubectl's MilliValue: rounded up."""
    return int((quantity(text) * 1000).to_integral_value(ROUND_CEILING))


def mebibytes(text: object) -> int:
    """kubectl top's memory column: the value in whole bytes, divided by 1 Mi."""
    return int(quantity(text).to_integral_value(ROUND_CEILING)) // 2**20


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery's duration.HumanDuration: `45s`, `5m3s`, `2d4h`, `3y`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def timestamp(text: object) -> datetime | None:
    """An RFC 3339 time from the API (`2024-05-01T10:00:00Z`), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(text: object, now: datetime | None = None) -> str:
    when = timestamp(text)
    if when is None:
        return "<unknown>"
    now = now or datetime.now(UTC)
    return human_duration((now - when).total_seconds())


def cell(value: object) -> str:
    """A Table cell as kubectl prints it."""
    if value is None:
        return NONE
    if value is True or value is False:
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def columns(rows: list[list[str]], padding: int = 3) -> str:
    """Rows as kubectl's tabwriter prints them: each column as wide as its widest
    cell plus three spaces, the last column not padded."""
    if not rows:
        return ""
    widths: list[int] = []
    for row in rows:
        for i, value in enumerate(row[:-1]):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(value))
    lines = []
    for row in rows:
        parts = [v.ljust(widths[i] + padding) for i, v in enumerate(row[:-1])]
        lines.append(("".join(parts) + (row[-1] if row else "")).rstrip())
    return "\n".join(lines)


def labels(mapping: object) -> str:
    """`app=api,tier=web`, or <none>."""
    if not isinstance(mapping, dict) or not mapping:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(mapping.items()))


def label_selector(selector: object) -> str:
    """A LabelSelector (matchLabels, matchExpressions) or a plain map as text."""
    if not isinstance(selector, dict):
        return ""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = (
            expr.get("key"),
            expr.get("operator"),
            expr.get("values") or [],
        )
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
