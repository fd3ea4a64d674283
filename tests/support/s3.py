"""An S3 API on 127.0.0.1 served by moto (TESTBED.md), for tests and benchmarks.

The pytest fixture runs moto's `ThreadedMotoServer` in-process; benchmarks can ask for a
separate `moto_server` process instead (`start_s3_server(separate_process=True)`) so the
server does not share the benchmark's GIL.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx
from botocore.config import Config

from .net import free_port, wait_for_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class S3Server:
    """Where the S3 API answers and the (dummy) credentials it accepts."""

    endpoint_url: str
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"
    _stop: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def client(self) -> S3Client:
        """A boto3 S3 client for this server; checksums only when required (boto3 >= 1.36)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        )

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 (and the AWS CLI) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def start_s3_server(separate_process: bool = False) -> S3Server:
    """Start moto's S3 on a free port of 127.0.0.1; call `.stop()` on the result when done."""
    if separate_process:
        port = free_port()
        moto_server = Path(sys.executable).with_name("moto_server")
        proc = subprocess.Popen(
            [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def stop_process() -> None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

        try:
            wait_for_port(port, timeout=30)
        except TimeoutError:
            stop_process()
            raise
        return S3Server(endpoint_url=f"http://127.0.0.1:{port}", _stop=stop_process)

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return S3Server(endpoint_url=f"http://{host}:{port}", _stop=server.stop)


@contextmanager
def running_s3_server(separate_process: bool = False) -> Iterator[S3Server]:
    """`start_s3_server` as a context manager (stops the server on exit)."""
    server = start_s3_server(separate_process)
    try:
        yield server
    finally:
        server.stop()
