"""S3 through boto3: `aws s3api head-bucket` and `aws s3 ls` are probes; other
`aws` commands stay manual."""

from __future__ import annotations

from ...binding import Binding, CommandLike
from ...family import BaseFamily, Call, Preview
from ...runtime import Context, Result
from . import runner
from .recognise import recognise_aws


class S3Family(BaseFamily):
    name = "s3"
    label = "S3 bucket check"
    programs = frozenset({"aws"})
    examples = (
        ("bash", "aws s3api head-bucket --bucket yomira-media"),
        ("bash", "aws s3 ls s3://yomira-media/avatars/"),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_aws(call.tokens, call.text)

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        return runner.run(command, params, ctx)

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        return Preview(False, "A probe: it reads the bucket and changes nothing.")

    def confirm_word(self, command: CommandLike) -> str:
        return "s3"  # it has no actions; a word for completeness

    def targets(self, command: CommandLike) -> list[str]:
        return []

    def needs_approval(self, command: CommandLike) -> bool:
        return False  # probes only


FAMILY = S3Family()
