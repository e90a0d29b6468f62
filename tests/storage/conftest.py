"""Fixtures of the object-storage tests: a real S3-compatible server and a
fresh bucket per test (tests/s3.py)."""

from tests.s3 import s3, s3_server  # noqa: F401
