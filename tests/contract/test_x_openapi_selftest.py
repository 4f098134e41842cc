"""The X contract checker can fail: what it must let through, and what it must refuse.

These tests check the checker (tests/contract/x_openapi.py), not the dispatcher: every
request and answer here is written by hand.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from openapi_core.protocols import Request, Response
from werkzeug.datastructures import Headers

from tests.contract.x_openapi import (
    TOKEN_PATH,
    X_DESCRIPTION,
    XRequest,
    XResponse,
    validate_x_request,
    validate_x_response,
    x_description,
)

X = "https://api.x.com"
TWEETS = f"{X}/2/tweets"
ME = f"{X}/2/users/me"
TOKEN = f"{X}{TOKEN_PATH}"
JSON = {"Content-Type": "application/json"}
PROBLEM = {"Content-Type": "application/problem+json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BEARER = {"Authorization": "Bearer abc"}
# What tweepy sends for OAuth 1.0a user context (values made up).
OAUTH1 = {
    "Authorization": 'OAuth oauth_nonce="1234", oauth_timestamp="1700000000", '
    'oauth_version="1.0", oauth_signature_method="HMAC-SHA1", oauth_consumer_key="ck", '
    'oauth_token="at", oauth_signature="c2lnbmF0dXJl%3D"'
}
VERIFIER = "v" * 43  # RFC 7636: 43 to 128 characters
BASIC = {"Authorization": "Basic " + base64.b64encode(b"client:secret").decode()}


def body(value: object) -> bytes:
    return json.dumps(value).encode()


# --- the description itself -------------------------------------------------------------


def test_the_description_is_xs_file_unchanged() -> None:
    # Git's blob id of latest-openapi.json at xdevplatform/xdk 84c26540 (README.md here).
    data = X_DESCRIPTION.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    assert blob == "070089dca9369236a1650797b236028b8e1d6911"


def test_the_description_has_our_x_operations_but_not_the_token_endpoint() -> None:
    paths = x_description().document["paths"]
    assert "post" in paths["/2/tweets"]
    assert "get" in paths["/2/users/me"]
    assert TOKEN_PATH not in paths  # hence x-oauth2-token.yaml


def test_requests_and_answers_are_openapi_cores_protocol_objects() -> None:
    request = XRequest(host_url=X, path="/2/tweets", method="post", body=None, content_type="")
    assert isinstance(request, Request)
    assert isinstance(XResponse(201, "application/json", Headers(), b"{}"), Response)


# --- POST /2/tweets ---------------------------------------------------------------------


@pytest.mark.parametrize("auth", [BEARER, OAUTH1], ids=["oauth2-bearer", "oauth1-user"])
def test_a_well_formed_post_passes(auth: dict[str, str]) -> None:
    validate_x_request("POST", TWEETS, {**JSON, **auth}, body({"text": "hi"}))


def test_the_host_and_a_prefix_before_2_are_not_the_contract() -> None:
    sandbox = "http://127.0.0.1:8123/x/2/tweets"
    validate_x_request("POST", sandbox, {**JSON, **BEARER}, body({"text": "hi"}))


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"txt": "hi"}, "'txt' was unexpected"),
        ({"text": 5}, "5 is not of type 'string'"),
        ({"text": "hi", "reply": {}}, "'in_reply_to_tweet_id' is a required property"),
    ],
    ids=["unknown-field", "text-not-a-string", "reply-without-id"],
)
def test_a_post_body_off_the_schema_fails(payload: object, complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        validate_x_request("POST", TWEETS, {**JSON, **BEARER}, body(payload))


@pytest.mark.parametrize(
    ("headers", "complaint"),
    [
        ({}, "Missing authorization header"),
        ({"Authorization": "Basic YTpi"}, "Unknown authorization method Basic"),
        ({"Authorization": "Bearer "}, "no credentials"),
        (
            {"Authorization": 'OAuth oauth_consumer_key="ck", oauth_signature="s"'},
            "lacks oauth_nonce, oauth_signature_method, oauth_timestamp, oauth_token",
        ),
    ],
    ids=["none", "basic", "empty-bearer", "oauth1-incomplete"],
)
def test_a_post_without_acceptable_auth_fails(headers: dict[str, str], complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        validate_x_request("POST", TWEETS, {**JSON, **headers}, body({"text": "hi"}))


def test_a_post_without_a_body_fails() -> None:
    with pytest.raises(AssertionError, match="Missing required request body"):
        validate_x_request("POST", TWEETS, BEARER, b"")


def test_a_post_that_is_not_json_fails() -> None:
    with pytest.raises(AssertionError, match="mimetype not found: text/plain"):
        validate_x_request("POST", TWEETS, {"Content-Type": "text/plain", **BEARER}, b"hi")
    with pytest.raises(AssertionError, match="Failed to deserialize"):
        validate_x_request("POST", TWEETS, {**JSON, **BEARER}, b'{"text": ')


def test_an_undeclared_query_parameter_fails() -> None:
    with pytest.raises(AssertionError, match="query parameter 'dry_run' is not declared"):
        validate_x_request("POST", f"{TWEETS}?dry_run=1", {**JSON, **BEARER}, body({"text": "hi"}))


def test_an_unknown_path_or_method_fails() -> None:
    with pytest.raises(AssertionError, match="Path not found"):
        validate_x_request("POST", f"{X}/2/tweet", {**JSON, **BEARER}, body({"text": "hi"}))
    with pytest.raises(AssertionError, match="not found"):
        validate_x_request("PUT", TWEETS, {**JSON, **BEARER}, body({"text": "hi"}))


# --- GET /2/users/me --------------------------------------------------------------------


def test_users_me_passes_with_declared_fields_and_fails_without_auth() -> None:
    validate_x_request("GET", f"{ME}?user.fields=id,name,username", BEARER, b"")
    with pytest.raises(AssertionError, match="'bogus' is not one of"):
        validate_x_request("GET", f"{ME}?user.fields=bogus", BEARER, b"")
    with pytest.raises(AssertionError, match="Missing authorization header"):
        validate_x_request("GET", ME, {}, b"")


# --- POST /2/oauth2/token (our own description) -----------------------------------------


CODE = (
    "grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Fexample.org%2Fcb"
    f"&code_verifier={VERIFIER}"
)
REFRESH = "grant_type=refresh_token&refresh_token=r3fresh"


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        (FORM, CODE + "&client_id=cid"),
        ({**FORM, **BASIC}, CODE),
        (FORM, REFRESH + "&client_id=cid"),
        ({**FORM, **BASIC}, REFRESH),
    ],
    ids=["code-public", "code-confidential", "refresh-public", "refresh-confidential"],
)
def test_a_well_formed_token_request_passes(headers: dict[str, str], form: str) -> None:
    validate_x_request("POST", TOKEN, headers, form.encode())


@pytest.mark.parametrize(
    ("headers", "form", "complaint"),
    [
        (FORM, CODE.replace(f"&code_verifier={VERIFIER}", "") + "&client_id=c", "'code_verifier'"),
        (FORM, REFRESH.replace("refresh_token=", "refresh_tokn=") + "&client_id=c", "refresh_tokn"),
        (FORM, "grant_type=password&username=u&password=p&client_id=c", "'password' is not one"),
        (FORM, CODE, "must send client_id"),
        (FORM, REFRESH + "&client_id=c&client_id=d", "'client_id' appears 2 times"),
        (FORM, REFRESH + "&client_id=c&client_secret=s", "'client_secret' was unexpected"),
        ({**FORM, **BEARER}, REFRESH + "&client_id=c", "HTTP Basic or not at all"),
        (
            {**FORM, "Authorization": "Basic !!"},
            REFRESH,
            "HTTP Basic or not at all: Basic credentials are not base64",
        ),
        (JSON, json.dumps({"grant_type": "refresh_token"}), "mimetype not found"),
    ],
    ids=[
        "no-verifier",
        "typo",
        "password-grant",
        "public-without-client-id",
        "repeated-field",
        "secret-in-body",
        "bearer",
        "bad-basic",
        "json-body",
    ],
)
def test_a_token_request_off_the_description_fails(
    headers: dict[str, str], form: str, complaint: str
) -> None:
    with pytest.raises(AssertionError, match=complaint):
        validate_x_request("POST", TOKEN, headers, form.encode())


def test_token_responses() -> None:
    granted = {
        "token_type": "bearer",
        "expires_in": 7200,
        "access_token": "acc3ss",
        "scope": "tweet.read tweet.write users.read offline.access",
        "refresh_token": "r3fresh",
    }
    validate_x_response("POST", TOKEN, 200, JSON, body(granted))
    refused = {"error": "invalid_request", "error_description": "Value passed was invalid."}
    validate_x_response("POST", TOKEN, 400, JSON, body(refused))
    with pytest.raises(AssertionError, match="'access_token' is a required property"):
        validate_x_response("POST", TOKEN, 200, JSON, body({"token_type": "bearer"}))
    with pytest.raises(AssertionError, match="'7200' is not of type 'integer'"):
        validate_x_response("POST", TOKEN, 200, JSON, body({**granted, "expires_in": "7200"}))
    with pytest.raises(AssertionError, match="'nope' is not one of"):
        validate_x_response("POST", TOKEN, 400, JSON, body({"error": "nope"}))


# --- answers from X ---------------------------------------------------------------------


def test_a_created_post_answer_passes() -> None:
    created = {"data": {"id": "1", "text": "hi"}}
    validate_x_response("POST", TWEETS, 201, JSON, body(created))
    validate_x_response(
        "POST", TWEETS, 201, {"Content-Type": "application/json; charset=utf-8"}, body(created)
    )


def test_a_created_post_answer_off_the_schema_fails() -> None:
    with pytest.raises(AssertionError, match="'id' is a required property"):
        validate_x_response("POST", TWEETS, 201, JSON, body({"data": {"text": "hi"}}))
    with pytest.raises(AssertionError, match="does not match"):
        validate_x_response("POST", TWEETS, 201, JSON, body({"data": {"id": "x1", "text": "hi"}}))
    with pytest.raises(AssertionError, match="mimetype not found: text/html"):
        validate_x_response("POST", TWEETS, 201, {"Content-Type": "text/html"}, b"<html></html>")


def test_xs_description_does_not_require_data_in_a_created_answer() -> None:
    # TweetCreateResponse lists data and errors, requires neither: an answer without data
    # is X's to give, and the adapter must cope (it treats it as an unknown outcome).
    validate_x_response(
        "POST", TWEETS, 201, JSON, body({"errors": [{"type": "about:blank", "title": "t"}]})
    )


CLIENT_NOT_ENROLLED = {
    "client_id": "123",
    "detail": "When authenticating requests to the X API v2 endpoints, you must use keys "
    "and tokens from an X developer App that is attached to a Project.",
    "registration_url": "https://developer.x.com/en/docs/projects/overview",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}


def test_problem_answers() -> None:
    validate_x_response("POST", TWEETS, 403, PROBLEM, body(CLIENT_NOT_ENROLLED))
    generic = {"title": "Forbidden", "type": "about:blank", "status": 403, "detail": "x"}
    validate_x_response("POST", TWEETS, 403, PROBLEM, body(generic))
    # An application/json error body is X's Error shape, {code, message}.
    validate_x_response("POST", TWEETS, 429, JSON, body({"code": 88, "message": "Rate limit"}))


def test_problem_answers_off_the_schema_fail() -> None:
    wrong_reason = {**CLIENT_NOT_ENROLLED, "reason": "not-enrolled"}
    with pytest.raises(AssertionError, match=r"ClientForbiddenProblem.*'not-enrolled' is not one"):
        validate_x_response("POST", TWEETS, 403, PROBLEM, body(wrong_reason))
    with pytest.raises(AssertionError, match="'title' is a required property"):
        validate_x_response("POST", TWEETS, 403, PROBLEM, body({"type": "about:blank"}))
    # A problem sent as application/json is checked against Error and fails. (Answers
    # reported from X do send problems as application/json: see README.md here.)
    generic = {"title": "Forbidden", "type": "about:blank", "status": 403, "detail": "x"}
    with pytest.raises(AssertionError, match=r"(?s)schemas/Error.*'code' is a required property"):
        validate_x_response("POST", TWEETS, 403, JSON, body(generic))


def test_users_me_answers() -> None:
    me = {"data": {"id": "2244994945", "name": "X Developers", "username": "XDevelopers"}}
    validate_x_response("GET", ME, 200, JSON, body(me))
    with pytest.raises(AssertionError, match="'username' is a required property"):
        validate_x_response("GET", ME, 200, JSON, body({"data": {"id": "1", "name": "n"}}))
    bad_handle = {"data": {**me["data"], "username": "not a handle"}}
    with pytest.raises(AssertionError, match="does not match"):
        validate_x_response("GET", ME, 200, JSON, body(bad_handle))
