"""moto's S3 API on 127.0.0.1, through a boto3 client and through presigned URLs."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest

from tests.support.s3 import S3Server

pytestmark = pytest.mark.testbed


def test_bucket_put_get_list(s3_server: S3Server) -> None:
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    s3 = s3_server.client()
    bucket = f"smoke-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="daily/2024-01-01/dump.zst", Body=b"dump bytes")
    body = s3.get_object(Bucket=bucket, Key="daily/2024-01-01/dump.zst")["Body"].read()
    assert body == b"dump bytes"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="daily/")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["daily/2024-01-01/dump.zst"]


def test_presigned_upload_and_download(s3_server: S3Server) -> None:
    s3 = s3_server.client()
    bucket = f"smoke-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    data = b"\x00\x01" * 4096
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"},
                                        ExpiresIn=300)
    httpx.put(put_url, content=data, timeout=10).raise_for_status()
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                        ExpiresIn=300)
    downloaded = httpx.get(get_url, timeout=10)
    assert hashlib.sha256(downloaded.content).digest() == hashlib.sha256(data).digest()
