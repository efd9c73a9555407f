"""`redis-cli` commands: reading ones (PING, INFO, LLEN, CONFIG GET, latency modes)
are probes, the rest (CONFIG SET, DEL, FLUSH*) actions.

Some reads can hurt a production Redis: it runs one command at a time, so a reply
that walks the whole keyspace or a whole collection stalls every other client until
it is done. Those probes carry `spec["heavy"]`, the reason in words: the console
shows it and runs them only once the person confirms (`heavy_read`)."""

from __future__ import annotations

from ...binding import ACTION, MANUAL, PROBE, Binding
from ...text import brace_parameters, target_of, unique, variables_in

REDIS_PROBES = {
    "PING",
    "INFO",
    "LLEN",
    "GET",
    "MGET",
    "EXISTS",
    "TTL",
    "PTTL",
    "TYPE",
    "STRLEN",
    "HGET",
    "HGETALL",
    "HLEN",
    "HKEYS",
    "HVALS",
    "HMGET",
    "SCARD",
    "SMEMBERS",
    "SISMEMBER",
    "ZCARD",
    "ZRANGE",
    "ZSCORE",
    "LRANGE",
    "LINDEX",
    "XLEN",
    "XINFO",
    "DBSIZE",
    "SCAN",
    "KEYS",
    "TIME",
    "ROLE",
    "LASTSAVE",
    "ECHO",
    "CONFIG GET",
    "CLIENT LIST",
    "CLIENT INFO",
    "SLOWLOG GET",
    "SLOWLOG LEN",
    "MEMORY USAGE",
    "MEMORY STATS",
    "MEMORY DOCTOR",
    "LATENCY LATEST",
    "LATENCY DOCTOR",
    "LATENCY HISTORY",
    "CLUSTER INFO",
    "CLUSTER NODES",
    "OBJECT ENCODING",
    "OBJECT FREQ",
    "OBJECT IDLETIME",
    "PUBSUB CHANNELS",
    "PUBSUB NUMSUB",
}
REDIS_TWO_WORD = {
    "CONFIG",
    "CLIENT",
    "SLOWLOG",
    "MEMORY",
    "LATENCY",
    "CLUSTER",
    "OBJECT",
    "PUBSUB",
    "SCRIPT",
    "ACL",
    "DEBUG",
    "FUNCTION",
    "MODULE",
    "XINFO",
}
REDIS_MODES = {
    "--latency",
    "--latency-history",
    "--latency-dist",
    "--bigkeys",
    "--memkeys",
    "--stat",
    "--scan",
    "--hotkeys",
}
REDIS_OPTS_WITH_VALUE = {
    "-h",
    "-p",
    "-a",
    "-u",
    "-n",
    "-i",
    "-r",
    "-d",
    "-s",
    "--user",
    "--pass",
    "--pattern",
    "--count",
    "--cacert",
    "--cert",
    "--key",
    "--sni",
    "-x",
    "--memkeys-samples",
}


KEYS_REASON = (
    "KEYS walks every key in one blocking call: on a big Redis it stalls every "
    "other client until it is done (SCAN with COUNT does not)"
)
# A whole collection in one reply: fine on a small key, a stall on a huge one.
WHOLE_COLLECTION = {
    "SMEMBERS": "set",
    "HGETALL": "hash",
    "HKEYS": "hash",
    "HVALS": "hash",
}
RANGE_COMMANDS = {"LRANGE": "list", "ZRANGE": "sorted set"}
# Client modes that iterate over every key (SCAN underneath, plus a size or a
# frequency per key).
KEYSPACE_MODES = {"bigkeys", "memkeys", "hotkeys", "scan"}
# Past this, a SCAN step examines enough keys to be felt.
SCAN_COUNT_HEAVY = 10_000


def _number(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def heavy_read(name: str, args: list[str], mode: str | None) -> str:
    """Why this reading command may hurt a production Redis, or "" if it should not."""
    if mode == "scan":
        return (
            "--scan lists every key in the keyspace: on a big Redis it runs for "
            "long and loads it the whole time"
        )
    if mode in KEYSPACE_MODES:
        return (
            f"--{mode} iterates over every key in the keyspace (SCAN, then a "
            "command per key): on a big Redis it runs for long and loads it the "
            "whole time"
        )
    if name == "KEYS":
        return KEYS_REASON
    if name in WHOLE_COLLECTION:
        return (
            f"{name} returns the whole {WHOLE_COLLECTION[name]} in one reply: on a "
            "huge key it blocks Redis for every other client"
        )
    if name in RANGE_COMMANDS and len(args) >= 4:
        start, stop = _number(args[2]), _number(args[3])
        if stop is not None and stop < 0 and start is not None and start >= 0:
            return (
                f"{name} {args[2]} {args[3]} returns the whole "
                f"{RANGE_COMMANDS[name]} in one reply: on a huge key it blocks "
                "Redis for every other client"
            )
    if name == "SCAN":
        upper = [a.upper() for a in args]
        if "COUNT" in upper[:-1]:
            count = _number(args[upper.index("COUNT") + 1])
            if count is not None and count >= SCAN_COUNT_HEAVY:
                return (
                    f"SCAN with COUNT {count} examines that many keys in one "
                    "blocking step"
                )
    return ""


def recognise_redis(tokens: list[str], text: str, grep: dict | None) -> Binding:
    target, host, mode, interval, pattern = "REDIS_URL", None, None, None, None
    args: list[str] = []
    it = iter(tokens[1:])
    for tok in it:
        if args:
            args.append(tok)
        elif tok in REDIS_MODES:
            mode = tok.lstrip("-")
        elif tok in REDIS_OPTS_WITH_VALUE:
            value = next(it, "")
            if tok == "-u":
                target = target_of(value, "REDIS_URL")
            elif tok == "-h":
                host = value
            elif tok == "-i":
                interval = value
            elif tok == "--pattern":
                pattern = value
        elif tok.startswith("-"):
            continue
        else:
            args.append(tok)
    spec: dict = {"target": target}
    if host:
        spec["host"] = host
    if grep:
        spec["filter"] = grep
    variables = unique([target, *variables_in(text)])
    if mode:
        spec.update(
            {"mode": mode, "interval": interval} if interval else {"mode": mode}
        )
        if pattern:
            spec["pattern"] = pattern
        if heavy := heavy_read("", [], mode):
            spec["heavy"] = heavy
        return Binding(PROBE, "redis", brace_parameters(text), variables, spec)
    if not args:
        return Binding(MANUAL, None, [], variables_in(text), {})  # interactive session
    name = args[0].upper()
    if name in REDIS_TWO_WORD and len(args) > 1:
        name = f"{name} {args[1].upper()}"
    spec.update({"command": name, "args": args})
    kind = PROBE if name in REDIS_PROBES else ACTION
    if kind == PROBE and (heavy := heavy_read(name, args, None)):
        spec["heavy"] = heavy
    return Binding(kind, "redis", brace_parameters(" ".join(args)), variables, spec)
