"""`make run`'s broker, kombu's filesystem transport, with message files that
appear whole: the consumer never reads a file still being written (kombu's own
transport creates the file, then writes it, and a consumer reading in between
died on an empty message)."""

from __future__ import annotations

import os

from kombu import Connection

from yomira_console import broker


def connection(folder) -> Connection:  # noqa: ANN001
    return Connection(
        "filesystem://",
        transport_options={
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
        },
    )


def test_filesystem_names_the_console_transport():
    with connection("/tmp") as conn:
        assert isinstance(conn.transport, broker.Transport)


def test_a_message_file_appears_only_once_it_is_whole(tmp_path, monkeypatch):
    seen_at_rename = []
    real_replace = os.replace

    def watching_replace(src, dst):  # noqa: ANN001, ANN202
        # What a consumer listing the folder could take at this moment.
        takeable = [n for n in os.listdir(tmp_path) if n.endswith(".q.msg")]
        seen_at_rename.append((takeable, os.path.getsize(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(broker.os, "replace", watching_replace)
    with connection(tmp_path) as conn:
        channel = conn.channel()
        channel._put("q", {"body": "x" * 1000})
        assert seen_at_rename and seen_at_rename[0][0] == []  # nothing takeable yet
        assert seen_at_rename[0][1] > 1000  # and the file was complete
        assert channel._get("q")["body"] == "x" * 1000
    assert os.listdir(tmp_path) == []  # no partial file left behind
