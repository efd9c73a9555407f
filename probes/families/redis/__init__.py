"""Redis commands through redis-py: `redis-cli ...` (a `| grep` becomes an output
filter). Reading commands are probes; CONFIG SET, DEL, FLUSH* and the rest actions."""

from __future__ import annotations

from ...binding import ACTION, Binding, CommandLike
from ...family import BaseFamily, Call, Preview
from ...runtime import Context, Result
from ...text import DESTRUCTIVE
from . import runner
from .recognise import recognise_redis


class RedisFamily(BaseFamily):
    name = "redis"
    label = "Redis command"
    programs = frozenset({"redis-cli"})
    examples = (
        ("bash", 'redis-cli -u "${REDIS_URL}" ping'),
        ("bash", 'redis-cli -u "${REDIS_URL}" info memory | grep used_memory_human'),
        ("bash", 'redis-cli -u "${REDIS_URL}" CONFIG SET maxmemory-policy allkeys-lru'),
        ("bash", 'redis-cli -u "${REDIS_URL}" FLUSHDB'),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_redis(call.tokens, call.text, call.grep)

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        return runner.run(command, params, ctx)

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        args = " ".join(command.spec.get("args", []))
        return Preview(
            False,
            f"Will send to Redis: {args}",
            facts=[f"target: TARGET_{command.spec.get('target', 'REDIS_URL')}"],
        )

    def confirm_word(self, command: CommandLike) -> str:
        return str(command.spec.get("command", "run")).split()[0].lower()

    def targets(self, command: CommandLike) -> list[str]:
        return [command.spec.get("target") or "REDIS_URL"]

    def needs_approval(self, command: CommandLike) -> bool:
        return command.kind == ACTION and bool(DESTRUCTIVE.search(command.text))


FAMILY = RedisFamily()
