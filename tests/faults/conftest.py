"""Fixtures of the fault tests: the real S3-compatible server (tests/s3.py),
for the machines that share no folder."""

from tests.s3 import s3, s3_server  # noqa: F401
