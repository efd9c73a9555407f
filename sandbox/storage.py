"""The object storage (moto's S3 server): the bucket the CDN serves covers from."""

from __future__ import annotations

import base64
from pathlib import Path

from . import state

BUCKET = "yomira-covers"
COVER_KEY = "covers/test.webp"
# A 1x1 lossless WebP, what the CDN check fetches.
TEST_WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")


def client(root: Path, port: int):  # noqa: ANN201 - boto3's client has no public type
    import boto3
    from botocore.config import Config

    s = state.read(root)
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=s["aws_access_key_id"],
        aws_secret_access_key=s["aws_secret_access_key"],
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
    )


def seed(root: Path, port: int) -> None:
    s3 = client(root, port)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(
        Bucket=BUCKET,
        Key=COVER_KEY,
        Body=TEST_WEBP,
        ContentType="image/webp",
        ACL="public-read",  # the CDN reads covers anonymously
        CacheControl="public, max-age=31536000, immutable",
    )
    for n in range(1, 13):
        s3.put_object(
            Bucket=BUCKET,
            Key=f"covers/series/{n}/cover.webp",
            Body=TEST_WEBP,
            ContentType="image/webp",
            ACL="public-read",  # the CDN reads covers anonymously
        )
