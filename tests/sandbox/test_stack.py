"""The stack's parts are real processes: they keep their data across restarts,
and any process can stop or start them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import psycopg
import pytest
import redis

from sandbox import process
from sandbox.parts import ProcessPart
from sandbox.stack import NAMES, Stack
from tests.sandbox.fixtures import scratch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def in_another_process(stack: Stack, name: str, verb: str) -> None:
    code = (
        "from pathlib import Path; from sandbox.stack import Stack; "
        f"Stack(Path({str(stack.root)!r})).part({name!r}).{verb}()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def answers(stack: Stack, name: str) -> bool:
    """Whether the part really serves (not only whether its pid is alive)."""
    try:
        if name == "database":
            with psycopg.connect(stack.database_url(), connect_timeout=2) as conn:
                return (
                    conn.execute("SELECT count(*) FROM crawler.job").fetchone()[0] > 0
                )
        if name == "redis":
            return redis.Redis(port=stack.port("redis"), socket_timeout=2).ping()
        url = {
            "api": f"http://127.0.0.1:{stack.port('api')}/health/live",
            "s3": f"http://127.0.0.1:{stack.port('s3')}/yomira-covers/covers/test.webp",
        }.get(name)
        if url:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status == 200
        import smtplib

        with smtplib.SMTP("127.0.0.1", stack.port("smtp"), timeout=2) as smtp:
            return smtp.noop()[0] == 250
    except (OSError, psycopg.Error, redis.RedisError):
        return False


@pytest.mark.parametrize("name", NAMES)
def test_a_part_stops_and_starts_from_another_process(sandbox_stack, name):  # noqa: ANN001
    env = sandbox_stack.env()
    in_another_process(sandbox_stack, name, "stop")
    assert not sandbox_stack.part(name).running()
    assert not answers(sandbox_stack, name)
    in_another_process(sandbox_stack, name, "start")
    assert sandbox_stack.part(name).running()
    assert answers(sandbox_stack, name)
    assert sandbox_stack.env() == env  # same ports: the console's env stays right


def test_restarting_the_stack_keeps_the_data_and_the_environment(sandbox_stack):  # noqa: ANN001
    env = sandbox_stack.env()
    with psycopg.connect(sandbox_stack.database_url(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO system.auditlog (action, entitytype) "
            "VALUES ('test.restart_marker', 'test')"
        )
    sandbox_stack.stop()
    assert not any(Stack(sandbox_stack.root).running().values())
    sandbox_stack.start()
    assert all(sandbox_stack.running().values())
    assert sandbox_stack.env() == env
    with psycopg.connect(sandbox_stack.database_url()) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM system.auditlog WHERE action = 'test.restart_marker'"
        ).fetchone()[0]
    assert kept == 1


def test_start_again_reuses_what_runs_and_replaces_what_was_killed(sandbox_stack):  # noqa: ANN001
    pids = {n: sandbox_stack.part(n).pid() for n in NAMES}
    os.kill(pids["api"], signal.SIGKILL)  # a crash: the state file still names it
    while process.alive(pids["api"], ""):
        time.sleep(0.05)
    Stack(sandbox_stack.root).start()
    after = {n: sandbox_stack.part(n).pid() for n in NAMES}
    assert after["api"] != pids["api"] and answers(sandbox_stack, "api")
    assert {n: p for n, p in after.items() if n != "api"} == {
        n: p for n, p in pids.items() if n != "api"
    }


def test_a_pid_in_the_state_file_that_is_someone_else_is_not_taken_for_a_part(
    sandbox_stack,  # noqa: ANN001
):
    # After a reboot the recorded pid may belong to an unrelated process.
    assert not process.alive(os.getpid(), str(sandbox_stack.root) + "/elsewhere")
    assert process.alive(sandbox_stack.part("api").pid(), str(sandbox_stack.root))


def control(stack: Stack, body: dict, token: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Sandbox-Token"] = token
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.port('api')}/_sandbox/control",
        data=json.dumps(body).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def health(stack: Stack) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{stack.port('api')}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_the_control_endpoint_refuses_without_the_token(sandbox_stack, token):  # noqa: ANN001
    status, body = control(sandbox_stack, {"error_rate": 1}, token)
    assert (status, body) == (404, {"error": "not found"})
    assert health(sandbox_stack)[0] == 200  # nothing was switched on


def test_the_control_endpoint_obeys_the_token(sandbox_stack):  # noqa: ANN001
    token = sandbox_stack.control_token()
    assert control(sandbox_stack, {"error_rate": 1}, token)[0] == 200
    assert health(sandbox_stack)[0] == 500
    assert control(sandbox_stack, {"error_rate": 0}, token)[1]["error_rate"] == 0
    assert health(sandbox_stack)[0] == 200


def test_the_control_token_is_not_in_the_console_environment(sandbox_stack):  # noqa: ANN001
    assert sandbox_stack.control_token() not in json.dumps(sandbox_stack.env())
    assert oct(os.stat(sandbox_stack.root / "state.json").st_mode & 0o777) == "0o600"


def test_after_every_process_was_killed_start_brings_the_stack_back(sandbox_stack):  # noqa: ANN001
    """What a reboot or an OOM kill leaves: a state file and a postmaster.pid
    naming dead processes."""
    pids = [sandbox_stack.part(name).pid() for name in NAMES]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for pid in pids:
        while process.alive(pid, ""):
            time.sleep(0.05)
    assert not any(sandbox_stack.running().values())
    Stack(sandbox_stack.root).start()
    assert all(answers(sandbox_stack, name) for name in NAMES)


def test_two_processes_starting_one_stack_at_once_start_each_part_once():
    root = scratch() / "box"
    code = (
        "from pathlib import Path; from sandbox.stack import Stack; "
        f"Stack(Path({str(root)!r})).start()"
    )
    starters = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT) for _ in range(2)
    ]
    try:
        assert [p.wait(timeout=120) for p in starters] == [0, 0]
        stack = Stack(root)
        assert all(answers(stack, name) for name in NAMES)
        apis = [
            pid
            for pid in os.listdir("/proc")
            if pid.isdigit() and process.alive(int(pid), f"sandbox.api --root {root} ")
        ]
        assert apis == [str(stack.part("api").pid())]
    finally:
        Stack(root).destroy()
        root.parent.rmdir()  # the scratch folder around it


def test_parts_listen_below_the_kernels_ephemeral_range(sandbox_stack):  # noqa: ANN001
    """No outgoing connection can be handed a part's port while it is stopped."""
    low, _high = process.ephemeral_range()
    ports = [sandbox_stack.port(name) for name in NAMES if name != "database"]
    assert all(process.SERVER_PORTS_FROM <= port < low for port in ports), ports
    assert len(set(ports)) == len(ports)


def squat(port: int) -> socket.socket:
    """Someone else's server on a part's port."""
    deadline = time.monotonic() + 20
    while True:
        holder = socket.socket()
        # As every server does: the part's last connections may be in TIME_WAIT.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", port))
        except OSError:
            holder.close()
            # The part's last connections let go in a moment (as the part waits).
            assert time.monotonic() < deadline, process.port_holder(port)
            time.sleep(0.1)
            continue
        holder.listen()
        return holder


def wait_for_line(path, line: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and line in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path.name} never said {line!r}")


@pytest.mark.parametrize("name", ["api", "redis"])
def test_a_part_restarted_while_its_port_is_briefly_held_waits_for_it(
    sandbox_stack,  # noqa: ANN001
    name,  # noqa: ANN001
):
    env = sandbox_stack.env()
    part, port = sandbox_stack.part(name), sandbox_stack.port(name)
    part.stop()
    holder = squat(port)
    failed: list[BaseException] = []

    def start() -> None:
        try:
            part.start()
        except BaseException as exc:  # noqa: BLE001 - shown by the assertion below
            failed.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    try:
        # It says who holds the port (this process) and waits...
        wait_for_line(part.log(), f"port {port} is held by pid {os.getpid()} (")
    finally:
        holder.close()  # ...and starts once it is let go
        starter.join(timeout=60)
    assert not failed, failed
    assert part.running() and answers(sandbox_stack, name)
    assert sandbox_stack.env() == env  # the same port: the console's env stays right


def test_a_port_held_for_good_is_said_clearly_not_moved(sandbox_stack, monkeypatch):  # noqa: ANN001
    monkeypatch.setattr(ProcessPart, "port_wait", 1.0)
    env = sandbox_stack.env()
    part, port = sandbox_stack.part("smtp"), sandbox_stack.port("smtp")
    part.stop()
    holder = squat(port)
    try:
        with pytest.raises(RuntimeError) as refused:
            Stack(sandbox_stack.root).start()
        said = str(refused.value)
        assert f"smtp: the smtp's port {port} is held by pid {os.getpid()} (" in said
        assert "LISTEN" in said and "TARGET_*" in said
        assert not part.running()
    finally:
        holder.close()
    part.start()
    assert answers(sandbox_stack, "smtp") and sandbox_stack.env() == env
