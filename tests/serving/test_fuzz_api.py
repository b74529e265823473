"""Fuzzing the HTTP API from its own OpenAPI schema (schemathesis): valid and invalid requests to
every operation, more than 2,000 in all; none may get a 5xx, every response must match the
schema (status codes, bodies), and schema-invalid requests must be refused with a 4xx. Only the
"schema-valid data is accepted" check is off: a schema-valid base64 string or file part need not be
an image, and those are rightly refused (415/422)."""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from headstart.serving import Limits, create_app

pytestmark = pytest.mark.fuzz

def _app():
    import tempfile
    from pathlib import Path

    from tests.conftest import fit_tiny_bundles

    bundles = fit_tiny_bundles(Path(tempfile.mkdtemp(prefix="hs-fuzz-")), per_class=6, steps=2)
    return create_app(bundles, limits=Limits(max_items=8, max_pixels=512 * 512))


config = SchemathesisConfig.from_dict({"generation": {"mode": "all"}})
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(), config=config)
SEEN = {"requests": 0}


@schema.parametrize()
@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_gets_a_server_error(case):
    response = case.call()
    SEEN["requests"] += 1
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


def test_the_fuzzing_sent_over_2000_requests():
    assert SEEN["requests"] >= 2000, SEEN
