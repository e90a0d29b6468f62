"""Schemathesis against /api/schema/: no request the schema allows, or breaks, gets a 5xx.

Every operation of the native API is called with generated bodies, queries
and path ids, valid and invalid, on the live ASGI studio, as a user with a
ready dataset and a job (so that some ids exist and lists are not empty).
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from studio.models import ApiToken
from studio.services.tokens import create_token
from tests.builders import make_job, ready_sample


def api_schema() -> dict:
    """The schema /api/schema/ serves, generated in-process (URLs only, no database)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def alices_token(alice, demo_models):
    make_job(alice, ready_sample(alice))
    new = create_token(alice, "fuzzing")
    # Unlimited: the fuzzer sends far more than a script would in a minute.
    ApiToken.objects.filter(pk=new.token.pk).update(rate_limit_per_minute=0)
    return new.secret


schema = schemathesis.openapi.from_dict(api_schema())


@pytest.mark.timeout(900)
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure can be replayed
    suppress_health_check=list(HealthCheck),
)
def test_no_api_request_gets_a_server_error(case, alices_token, live_server_url):
    response = case.call(
        base_url=live_server_url, headers={"Authorization": f"Bearer {alices_token}"}
    )
    case.validate_response(response, checks=[not_a_server_error])
