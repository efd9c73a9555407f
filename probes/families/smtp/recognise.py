"""`openssl s_client -starttls smtp` and `swaks --quit-after`: connectivity probes."""

from __future__ import annotations

from ...binding import PROBE, Binding
from ...text import variables_in


def _option_value(tokens: list[str], name: str) -> str | None:
    at = tokens.index(name) if name in tokens else -1
    return tokens[at + 1] if 0 <= at < len(tokens) - 1 else None


def recognise_smtp(tokens: list[str], text: str) -> Binding | None:
    """`openssl s_client -starttls smtp -connect host:port` and `swaks --quit-after`:
    connectivity probes. Anything that sends mail stays manual."""
    if tokens[0] == "openssl" and "s_client" in tokens and "smtp" in tokens:
        address, starttls = _option_value(tokens, "-connect"), True
    elif tokens[0] == "swaks" and "--quit-after" in tokens:
        address, starttls = _option_value(tokens, "--server"), "-tls" in tokens
    else:
        return None
    if not address:
        return None
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    spec = {
        "host": host,
        "port": int(port) if port.isdigit() else 25,
        "starttls": starttls,
    }
    return Binding(PROBE, "smtp", [], variables_in(text), spec)
