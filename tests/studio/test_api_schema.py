"""The OpenAPI schema describes every endpoint without guesswork."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_schema_generates_without_a_single_warning(tmp_path):
    out = tmp_path / "schema.yaml"
    # --fail-on-warn turns any endpoint drf-spectacular cannot type into an error.
    call_command("spectacular", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/jobs/{job_id}/metrics/", "/api/v1/models/", "/api/v1/datasets/"):
        assert f"  {path}:" in text
    assert "tokenAuth" in text
