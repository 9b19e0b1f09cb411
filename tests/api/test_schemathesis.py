"""Schemathesis drives every operation of our own generated schema against the app in-process.

The schema is fetched from the running app (`/api/v1/schema`, with a token),
and each operation gets Hypothesis cases in schemathesis' positive mode
(inputs that match the schema) and negative mode (inputs that break it).
Checks: no 5xx, every status code answered is documented, and content types
and response bodies match the schema. Bounded to a few dozen examples per
operation so the run stays well under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 20}


@pytest.fixture
def auth_header() -> dict[str, str]:
    user = get_user_model().objects.create_user("schemathesis")
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@pytest.fixture
def chain() -> ChainKit:
    orgs = [Org("org1"), Org("org2")]
    kit = ChainKit(orgs)
    for i in range(3):
        kit.commit([kit.put(orgs[0].writer, "n", "k", i), kit.put(orgs[1].writer, "n", f"k{i}", [i])])
    return kit


def test_every_operation_conforms_to_our_own_schema_and_never_answers_5xx(chain, auth_header):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema?format=json", get_wsgi_application(), headers=auth_header)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            try:
                run_cases(operation, mode, examples, dict(auth_header))
            except Unsatisfiable:
                # An operation without parameters or body (GET /status) has nothing to break.
                assert mode is GenerationMode.NEGATIVE, operation.label


def run_cases(operation: schemathesis.APIOperation, mode: GenerationMode, examples: int, auth: dict) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=auth, checks=CHECKS)

    run()
