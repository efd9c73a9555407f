"""Two stacks on one machine never share a port: while one stack's part is down
(an outage a drill injected), its port is free, and another stack choosing ports
then must not take it (seen once: a test run's api restarted onto a port another
run had just taken)."""

from __future__ import annotations

import itertools

import pytest

from sandbox import process


@pytest.fixture
def claims(tmp_path, monkeypatch):
    monkeypatch.setattr(process, "CLAIMS", tmp_path / "claims")
    return tmp_path / "claims"


def offering(monkeypatch, *ports: int) -> None:
    """random.randint offers these ports, in turn, then the last forever."""
    seq = itertools.chain(ports, itertools.repeat(ports[-1]))
    monkeypatch.setattr(process.random, "randint", lambda a, b: next(seq))


def test_a_port_another_live_stack_claimed_is_not_taken(claims, tmp_path, monkeypatch):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    a, b = process.free_port(), process.free_port()
    while b == a:
        b = process.free_port()
    process.claim(a, theirs)
    offering(monkeypatch, a, b)
    assert process.server_port(root=mine) == b
    assert (claims / str(b)).read_text() == str(mine)
    # Its own claim is no obstacle to a stack (a part restarting on its port).
    offering(monkeypatch, b)
    assert process.server_port(root=mine) == b


def test_a_claim_whose_stack_is_gone_is_reused(claims, tmp_path, monkeypatch):
    mine, gone = tmp_path / "mine", tmp_path / "gone"
    mine.mkdir()
    port = process.free_port()
    process.claim(port, gone)  # its folder never existed, or was removed
    offering(monkeypatch, port)
    assert process.server_port(root=mine) == port
    assert (claims / str(port)).read_text() == str(mine)


def test_without_a_claims_folder_ports_are_still_chosen(tmp_path, monkeypatch):
    # /tmp not writable: claiming is a courtesy, never a failure.
    monkeypatch.setattr(process, "CLAIMS", tmp_path / "file" / "claims")
    (tmp_path / "file").write_text("not a folder")
    port = process.free_port()
    offering(monkeypatch, port)
    assert process.server_port(root=tmp_path) == port
