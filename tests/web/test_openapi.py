"""/openapi.json documents every answer: success shapes, our error shape, the operator scheme."""

from __future__ import annotations

from typing import Any

import httpx

OPERATOR_PATHS = ("/api/deliveries", "/api/campaigns/{campaign_id}/report.csv")


async def spec_of(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


async def test_every_answer_has_a_documented_shape(client: httpx.AsyncClient) -> None:
    spec = await spec_of(client)
    components = spec["components"]["schemas"]
    assert "HTTPValidationError" not in components
    for method, path, operation in operations(spec):
        for code, answer in operation["responses"].items():
            content = answer.get("content")
            if code == "204":  # No Content: a body is not allowed
                assert not content, f"{method} {path} 204 declares a body"
                continue
            assert content, f"{method} {path} {code} has no content"
            json_schema = content.get("application/json", {}).get("schema")
            if (path, code) == ("/healthz", "503"):  # the health report itself, unhealthy
                assert json_schema == {"$ref": "#/components/schemas/HealthOut"}
            elif int(code) >= 400:
                assert json_schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path)
            elif json_schema is not None:
                assert json_schema.get("$ref", "").startswith("#/components/schemas/"), (
                    method,
                    path,
                    code,
                )
            else:  # a stream, a CSV file, the metrics text, a fax's PDF for its gateway
                assert set(content) <= {
                    "text/event-stream",
                    "text/csv",
                    "text/plain",
                    "application/pdf",
                }
    error = components["ErrorDetail"]["properties"]
    assert set(error) == {"status", "field", "message"}


async def test_operator_endpoints_declare_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    spec = await spec_of(client)
    assert spec["components"]["securitySchemes"] == {
        "operatorToken": {
            "type": "http",
            "scheme": "bearer",
            "description": spec["components"]["securitySchemes"]["operatorToken"]["description"],
        }
    }
    secured = {(m, p) for m, p, op in operations(spec) if op.get("security")}
    operator = {(m, p) for m, p, _ in operations(spec) if p.startswith("/api/deliveries")}
    operator |= {
        ("GET", "/api/campaigns/{campaign_id}/report.csv"),
        ("GET", "/api/supporters"),
        ("GET", "/api/review"),
        ("POST", "/api/appeals/{appeal_id}/{decision}"),
    }
    assert secured == operator
    for method, path, operation in operations(spec):
        if (method, path) in secured:
            assert operation["security"] == [{"operatorToken": []}]
            assert "401" in operation["responses"]


async def test_documented_errors_are_what_the_api_answers(client: httpx.AsyncClient) -> None:
    spec = await spec_of(client)
    documented = {
        (m, p): set(op["responses"]) for m, p, op in operations(spec) if p in OPERATOR_PATHS
    }
    unauthorised = await client.get("/api/deliveries")
    assert unauthorised.status_code == 401
    assert "401" in documented[("GET", "/api/deliveries")]
    body = unauthorised.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "field", "message"}
    bad_limit = await client.get(
        "/api/deliveries?limit=0", headers={"Authorization": "Bearer operator-secret-token"}
    )
    assert bad_limit.status_code == 422 and bad_limit.json()["error"]["field"] == "limit"
