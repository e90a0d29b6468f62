"""A real S3-compatible server on loopback, and the studio pointed at it.

- `S3Server`: moto's server (`python -m moto.server`), started as a child
  process like the studio's own, its log in `test-artifacts/moto-s3-<pid>.log`.
- `s3_server` (session fixture): the running server.
- `s3` (fixture): a fresh bucket on it, this test process's settings
  switched to `TAILOR_STORAGE=s3` (pytest-django's `settings`), and the
  same as environment variables for child processes (`s3.env`, for
  `CeleryWorker(env=...)`). Its `requests` counts the requests this
  process's S3 client makes, by operation, and the body bytes it received.

Import the fixtures into a conftest.py (tests/storage/conftest.py does):
`from tests.s3 import s3, s3_server  # noqa: F401`.

No fakes: boto3 talks HTTP to a real server that keeps objects as S3 does.
"""

import itertools
import os
import sys
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import pytest

from studio.redis_server import free_port
from tests.processes import ChildProcess, wait_for

ACCESS_KEY = "tailor-test-key"
SECRET_KEY = "tailor-test-secret"
REGION = "us-east-1"
_buckets = itertools.count(1)


class S3Server:
    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.child: ChildProcess | None = None

    def start(self) -> "S3Server":
        self.child = ChildProcess(
            f"moto-s3-{os.getpid()}",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        wait_for(self._answers, 60, "the S3 server to answer", self.child)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1):
                return True
        except OSError:
            return False

    def env(self, bucket: str) -> dict:
        """The environment of a studio process that keeps its files in `bucket`."""
        return {
            "TAILOR_STORAGE": "s3",
            "TAILOR_S3_BUCKET": bucket,
            "TAILOR_S3_ENDPOINT_URL": self.endpoint,
            "TAILOR_S3_REGION": REGION,
            "TAILOR_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "TAILOR_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "TAILOR_S3_ADDRESSING_STYLE": "path",
        }

    def client(self):
        """A boto3 client of the test's own, to look into the bucket."""
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


@dataclass
class S3Bucket:
    server: S3Server
    name: str
    env: dict
    requests: Counter = field(default_factory=Counter)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.server.client().get_paginator("list_objects_v2")
        found = pages.paginate(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for page in found for item in page.get("Contents", ()))

    def count_requests(self, client) -> None:
        """Count, in `requests`, what `client` asks of the store: one entry
        per operation (`GetObject`, `HeadObject`, ...) and `body_bytes`, the
        object bytes it was sent back."""

        def counted(model, parsed, **_):
            self.requests[model.name] += 1
            self.requests["body_bytes"] += int(parsed.get("ContentLength") or 0) * (
                model.name == "GetObject"
            )

        client.meta.events.register("after-call.s3", counted)


@pytest.fixture(scope="session")
def s3_server():
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server, settings):
    """A fresh bucket, and the studio's settings pointed at it."""
    bucket = f"tailor-{os.getpid()}-{next(_buckets)}"
    s3_server.client().create_bucket(Bucket=bucket)
    env = s3_server.env(bucket)
    for name, value in env.items():
        setattr(settings, name, value)
    settings.TAILOR_S3_DOWNLOADS = "redirect"
    from studio.services import object_store

    found = S3Bucket(s3_server, bucket, env)
    found.count_requests(object_store.client())
    return found
