"""The keyspace modes a heavy Redis probe may be (`--scan`, `--bigkeys`,
`--memkeys`), run against this run's Redis once confirmed: SCAN underneath, never
KEYS, and a clear refusal for the modes the console does not run."""

from __future__ import annotations

import os

import pytest
import redis

from probes.commands import run
from probes.runtime import Context
from tests.probes.bound import bind


@pytest.fixture
def keyspace(monkeypatch):
    url = os.environ.get("TARGET_TEST_REDIS_URL")
    if not url:
        pytest.skip("run with tests/stack.py (it starts this run's Redis)")
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.set("ks:small", "x")
    client.set("ks:large", "x" * 500)
    client.rpush("ks:queue", *range(40))
    client.sadd("other:set", "a", "b")
    monkeypatch.setenv("TARGET_REDIS_URL", url)
    yield client
    client.flushdb()


def test_scan_with_a_pattern_lists_the_matching_keys(keyspace):
    result = run(bind("redis-cli --scan --pattern 'ks:*'"), {}, Context())
    assert result.ok, result.summary
    assert result.summary == "3 keys"
    assert sorted(result.output.splitlines()) == ["ks:large", "ks:queue", "ks:small"]


def test_bigkeys_names_the_biggest_key_of_each_type(keyspace):
    result = run(bind("redis-cli --bigkeys"), {}, Context())
    assert result.ok, result.summary
    assert result.summary == "4 keys sampled"
    lines = result.output.splitlines()
    assert "Biggest string  found 'ks:large' has 500 bytes" in lines
    assert "Biggest list    found 'ks:queue' has 40 items" in lines
    assert "Biggest set     found 'other:set' has 2 members" in lines


def test_memkeys_names_the_key_using_most_memory(keyspace):
    result = run(bind("redis-cli --memkeys"), {}, Context())
    assert result.ok, result.summary
    assert result.output.startswith("Biggest memory  found 'ks:large' has ")


def test_modes_the_console_does_not_run_say_so(keyspace):
    result = run(bind("redis-cli --stat"), {}, Context())
    assert (result.ok, result.summary) == (
        False,
        "redis-cli --stat is not something the console runs: run it by hand.",
    )
