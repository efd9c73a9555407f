"""S3 checks (boto3): head-bucket and a short listing. Endpoint and credentials come
from the environment: TARGET_S3_ENDPOINT_URL (for R2, MinIO...), TARGET_AWS_ACCESS_KEY_ID,
TARGET_AWS_SECRET_ACCESS_KEY, TARGET_AWS_REGION."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from ... import targets
from ...runtime import Context, Result, clip, within_deadline


def client(spec: dict, ctx: Context):  # noqa: ANN201
    endpoint = spec.get("endpoint") or targets.value("S3_ENDPOINT_URL")
    config = Config(
        connect_timeout=ctx.connect_timeout,
        read_timeout=ctx.remaining(),
        retries={"max_attempts": 1},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=targets.value("AWS_REGION") or "us-east-1",
        aws_access_key_id=targets.value("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=targets.value("AWS_SECRET_ACCESS_KEY"),
        config=config,
    )


def run(command, params: dict[str, str], ctx: Context) -> Result:  # noqa: ANN001
    # botocore's timeouts are per connect and per read: a store trickling its
    # answer would hold the worker. These calls are read-only probes, so the
    # result is given at the deadline and the call left to end on its own.
    return within_deadline(
        ctx,
        lambda: _run(command.spec, ctx),
        lambda: Result(
            False,
            f"The object store did not answer within {ctx.timeout:g} s.",
            timed_out=True,
        ),
    )


def _run(spec: dict, ctx: Context) -> Result:
    bucket = spec.get("bucket", "")
    try:
        s3 = client(spec, ctx)
        if spec["operation"] == "head_bucket":
            s3.head_bucket(Bucket=bucket)
            return Result(
                True, f"bucket {bucket} is reachable", f"head-bucket {bucket}: 200 OK"
            )
        listing = s3.list_objects_v2(
            Bucket=bucket, Prefix=spec.get("prefix", ""), MaxKeys=50
        )
        keys = [
            f"{o['LastModified']:%Y-%m-%d %H:%M:%S} {o['Size']:>10} {o['Key']}"
            for o in listing.get("Contents", [])
        ]
        more = " (more not listed)" if listing.get("IsTruncated") else ""
        return Result(
            True,
            f"{len(keys)} objects in {bucket}{more}",
            clip("\n".join(keys), ctx),
        )
    except (ConnectTimeoutError, ReadTimeoutError):
        return Result(False, "The object store did not answer in time.", timed_out=True)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return Result(
            False, f"{error.get('Code', 'error')}: {error.get('Message', str(exc))}"
        )
    except BotoCoreError as exc:
        return Result(False, f"Cannot reach the object store: {exc}")
