"""kombu's filesystem transport (`make run`'s broker when no Redis is configured),
with one fix: a message file appears whole or not at all.

kombu creates the message file, then writes it. The worker's consumer lists the
folder, moves each message file out and reads it: between the create and the write
it reads an empty file, `json.loads` fails, and the consumer dies (the worker stays
up, running nothing; seen in the newcomer test). Here the message is written under a
name the consumer does not take (it takes only `<stamp>_<uuid>.<queue>.msg`) and
renamed into place, which is atomic within a folder."""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):  # noqa: ANN001, ANN003, ANN202
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: `_get` compares what follows the first dot with
        # "<queue>.msg", which "<name>.part" never is.
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """`filesystem://` names this transport in every process that loads the
    console's Celery app (web and worker alike)."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
