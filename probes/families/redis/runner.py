"""Redis commands (redis-py): PING, INFO, LLEN, CONFIG GET, latency samples as
probes; CONFIG SET, DEL and the rest as actions. A `| grep x` in the runbook becomes
an output filter."""

from __future__ import annotations

import statistics
import time

import redis

from ... import targets
from ...runtime import Context, Deadline, Result, apply_filter, clip, substitute

_clients: dict[tuple, redis.Redis] = {}


def client(spec: dict, ctx: Context) -> redis.Redis:
    """One client (and connection pool) per target and limits, kept for the life of
    the worker process: a probe should not pay for a new connection every time."""
    url = targets.require(spec.get("target") or "REDIS_URL")
    key = (url, ctx.connect_timeout, ctx.timeout)
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(
            url,
            socket_connect_timeout=ctx.connect_timeout,
            socket_timeout=ctx.timeout,
            decode_responses=True,
            retry_on_timeout=False,
            health_check_interval=30,
        )
    return _clients[key]


def _format(value: object) -> str:
    if isinstance(value, dict):
        return "\n".join(f"{k}:{v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "\n".join(f"{i + 1}) {_format(v)}" for i, v in enumerate(value))
    if value is True:
        return "OK"
    return "(nil)" if value is None else str(value)


def run(command, params: dict[str, str], ctx: Context) -> Result:  # noqa: ANN001
    spec = command.spec
    deadline = Deadline(ctx)
    try:
        conn = client(spec, ctx)
        # socket_timeout is per read; at the deadline the pool's sockets are shut,
        # so a reply trickling in cannot hold the worker past it.
        deadline.on_expiry(conn.connection_pool.disconnect)
        try:
            with deadline:
                return _run(conn, spec, params, ctx)
        except Exception:
            # Cut off at the deadline: redis-py fails in whatever way its torn-down
            # connection makes it (ConnectionError, or ValueError from its buffer).
            if deadline.expired:
                return Result(
                    False,
                    f"Redis did not answer within {ctx.timeout:g} s.",
                    timed_out=True,
                )
            raise
    except redis.TimeoutError:
        return Result(False, "Redis did not answer in time.", timed_out=True)
    except redis.ConnectionError as exc:
        return Result(False, f"Cannot reach Redis: {exc}")
    except redis.ResponseError as exc:
        return Result(False, f"Redis refused the command: {exc}")
    except redis.RedisError as exc:
        return Result(False, f"{type(exc).__name__}: {exc}")


def _run(conn: redis.Redis, spec: dict, params: dict[str, str], ctx: Context) -> Result:
    mode = spec.get("mode", "")
    if mode.startswith("latency"):
        return _latency(conn, spec, ctx)
    if mode in KEYSPACE_MODES:
        return _keyspace(conn, spec, ctx)
    if mode:
        return Result(
            False,
            f"redis-cli --{mode} is not something the console runs: run it by hand.",
        )
    # Each argument is sent as one argument: a parameter's value is data (never
    # split, never expanded as a ${NAME}).
    args = [substitute(a, params) for a in spec["args"]]
    name = spec["command"]
    if name == "INFO":
        text = _format(conn.info(*args[1:2]) if len(args) > 1 else conn.info())
    elif name == "PING":
        text = "PONG" if conn.ping() else "no PONG"
    else:
        text = _format(conn.execute_command(*args))
    text = apply_filter(text, spec.get("filter"))
    first = text.splitlines()[0] if text else "(empty)"
    return Result(True, f"{name}: {first[:200]}", clip(text, ctx))


# What each type's size is, and in what.
SIZES = {
    "string": ("strlen", "bytes"),
    "list": ("llen", "items"),
    "set": ("scard", "members"),
    "zset": ("zcard", "members"),
    "hash": ("hlen", "fields"),
    "stream": ("xlen", "entries"),
}
KEYSPACE_MODES = {"scan", "bigkeys", "memkeys"}


def _keyspace(conn: redis.Redis, spec: dict, ctx: Context) -> Result:
    """`--scan [--pattern P]`, `--bigkeys`, `--memkeys`: SCAN through the keyspace
    (never KEYS), stopping at the deadline or the output cap with what was seen."""
    mode = spec["mode"]
    pattern = spec.get("pattern") or None
    stop = time.monotonic() + ctx.remaining() * 0.8
    keys, biggest, seen, cut = [], {}, 0, False
    for key in conn.scan_iter(match=pattern, count=1000):
        seen += 1
        if mode == "scan":
            keys.append(key)
        elif mode == "bigkeys":
            kind = conn.type(key)
            measure, unit = SIZES.get(kind, (None, ""))
            size = getattr(conn, measure)(key) if measure else 0
            if size >= biggest.get(kind, ("", -1, ""))[1]:
                biggest[kind] = (key, size, unit)
        else:  # memkeys
            size = conn.memory_usage(key) or 0
            if size >= biggest.get("memory", ("", -1, ""))[1]:
                biggest["memory"] = (key, size, "bytes")
        if time.monotonic() > stop or len(keys) >= 100_000:
            cut = True
            break
    if mode == "scan":
        text = "\n".join(keys)
        summary = f"{len(keys)} key{'s' if len(keys) != 1 else ''}"
    else:
        text = "\n".join(
            f"Biggest {kind:<7} found {key!r} has {size} {unit}"
            for kind, (key, size, unit) in sorted(biggest.items())
        )
        summary = f"{seen} keys sampled"
    if cut:
        summary += " (stopped before the end of the keyspace)"
    return Result(True, summary, clip(text, ctx), {"keys": seen})


def _latency(conn: redis.Redis, spec: dict, ctx: Context) -> Result:
    """`redis-cli --latency(-history)`: PING round trips for about a second."""
    samples = []
    stop = time.monotonic() + min(1.0, ctx.remaining() / 2)
    while time.monotonic() < stop and len(samples) < 1000:
        start = time.perf_counter()
        conn.ping()
        samples.append((time.perf_counter() - start) * 1000)
    text = (
        f"min: {min(samples):.2f}, max: {max(samples):.2f}, avg: "
        f"{statistics.mean(samples):.2f} ({len(samples)} samples) ms"
    )
    return Result(True, f"latency {text}", text, {"samples": len(samples)})
