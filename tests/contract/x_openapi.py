"""Requests to X, and answers from it, checked against X's own OpenAPI description.

``x-openapi.json`` is X's published description, unchanged (README.md here says where it
came from). It does not describe the OAuth 2.0 token endpoint, so ``POST /2/oauth2/token``
is checked against ``x-oauth2-token.yaml``, a description of our own.

The checking is openapi-core's: the path and method, the query and header parameters, the
security requirement, the request body against its media type's schema; for a response,
its status, content type and body. Only the path is taken from the URL: the scheme, host
and any prefix before ``/2/`` are whatever the adapter was pointed at (X or the sandbox).

Where openapi-core cannot check what the descriptions say, this module adds checks of its
own, each marked "ours" below:

- openapi-core does not check OAuth 2.0 schemes at all (it warns and lets any request
  through); here an ``oauth2`` scheme is met by ``Authorization: Bearer <token>``
  (RFC 6750 2.1). Scopes cannot be seen in a bearer token and are not checked.
- openapi-core compares HTTP auth-scheme names case-sensitively, so X's ``UserToken``
  (``scheme: OAuth``) could never match; here names compare case-insensitively
  (RFC 7235 2.1), and an ``OAuth`` header must carry the OAuth 1.0a protocol parameters
  of RFC 5849 3.5.1 (with ``oauth_token``: X's UserToken is user context).
- a query parameter the operation does not declare is an error (X answers 400).
- openapi-core ignores ``discriminator``; here, wherever a body meets a schema whose
  discriminator maps the body's value (X's ``Problem``: ``type`` to ``ClientForbiddenProblem``
  and the like), the body is also checked against the mapped schema, as OpenAPI 3.0 says.
- openapi-core checks a form body only through the fields its schema names (others are
  dropped before checking); here the form as sent, every field of it, is checked against
  the schema too, and a field may appear only once (RFC 6749 3.2).
- a token request without HTTP Basic client authentication must name its ``client_id``
  in the body (RFC 6749 4.1.3 and 6: public clients).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.security.providers import ApiKeyProvider, BaseProvider
from openapi_core.validation.request.exceptions import (
    InvalidRequestBody,
    SecurityValidationError,
)
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4
from werkzeug.datastructures import Headers, ImmutableMultiDict

HERE = Path(__file__).parent
X_DESCRIPTION = HERE / "x-openapi.json"
TOKEN_DESCRIPTION = HERE / "x-oauth2-token.yaml"
TOKEN_PATH = "/2/oauth2/token"

# RFC 5849 3.5.1: the protocol parameters an OAuth 1.0a Authorization header carries
# (oauth_version is optional; oauth_token is there in user context).
OAUTH1_PARAMETERS = frozenset(
    {
        "oauth_consumer_key",
        "oauth_token",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_nonce",
        "oauth_signature",
    }
)
_OAUTH1_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"')


# --- openapi-core's request and response protocols ----------------------------------------


@dataclass
class XRequest:
    """A request as openapi-core's ``openapi_core.protocols.Request`` protocol wants it."""

    host_url: str
    path: str
    method: str  # lower case
    body: bytes | None
    content_type: str
    parameters: RequestParameters = field(default_factory=RequestParameters)


@dataclass
class XResponse:
    """A response as openapi-core's ``openapi_core.protocols.Response`` protocol wants it."""

    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


# --- security schemes openapi-core leaves unchecked (ours) ---------------------------------


def _authorization(parameters: RequestParameters) -> tuple[str, str]:
    header = parameters.header.get("Authorization")
    if not header:
        raise SecurityProviderError("Missing authorization header.")
    scheme, _, credentials = str(header).strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        raise SecurityProviderError(f"Authorization header {scheme!r} has no credentials.")
    return scheme, credentials


class OAuth2BearerProvider(BaseProvider):
    """An ``oauth2`` scheme: an access token sent as ``Authorization: Bearer`` (RFC 6750)."""

    def __call__(self, parameters: RequestParameters) -> Any:
        scheme, token = _authorization(parameters)
        if scheme.lower() != "bearer":
            raise SecurityProviderError(f"Unknown authorization method {scheme}")
        return token


class HttpProvider(BaseProvider):
    """An ``http`` scheme, its name compared case-insensitively (RFC 7235 2.1)."""

    def __call__(self, parameters: RequestParameters) -> Any:
        scheme, credentials = _authorization(parameters)
        wanted = (self.scheme / "scheme").read_str()
        if scheme.lower() != wanted.lower():
            raise SecurityProviderError(f"Unknown authorization method {scheme}")
        if wanted.lower() == "oauth":
            missing = OAUTH1_PARAMETERS - {k for k, v in _OAUTH1_PARAM.findall(credentials) if v}
            if missing:
                raise SecurityProviderError(
                    f"OAuth 1.0a header lacks {', '.join(sorted(missing))} (RFC 5849 3.5.1)"
                )
        if wanted.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise SecurityProviderError("Basic credentials are not base64") from exc
            if ":" not in decoded:
                raise SecurityProviderError("Basic credentials are not id:secret")
        return credentials


class UnknownSchemeProvider(BaseProvider):
    def __call__(self, parameters: RequestParameters) -> Any:
        kind = (self.scheme / "type").read_str()
        raise SecurityProviderError(f"security scheme type {kind!r} is not checked here")


class StrictSecurityProviderFactory(SecurityProviderFactory):
    PROVIDERS = {  # noqa: RUF012  (the base class declares it a plain class attribute)
        "apiKey": ApiKeyProvider,
        "http": HttpProvider,
        "oauth2": OAuth2BearerProvider,
        "openIdConnect": UnknownSchemeProvider,
    }


# --- loading ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Description:
    """One loaded description: openapi-core's view of it and the raw document."""

    name: str
    api: OpenAPI
    document: Mapping[str, Any]
    seconds: float  # reading, parsing and checking the description took this long

    @property
    def server_url(self) -> str:
        servers = self.document.get("servers") or [{"url": "https://api.x.com"}]
        return str(servers[0]["url"]).rstrip("/")

    @functools.cached_property
    def registry(self) -> Registry[Any]:
        """The document as a JSON Schema resource, for checking a value against a part."""
        registry: Registry[Any] = Registry().with_resource(
            self.uri, DRAFT4.create_resource(self.document)
        )
        return registry

    @property
    def uri(self) -> str:
        return f"urn:appeal-dispatcher:{self.name}"

    def schema_errors(self, ref: str, value: Any) -> list[str]:
        """``value`` checked against the schema at local reference ``ref`` (``#/...``)."""
        validator = OAS30Validator({"$ref": self.uri + ref}, registry=self.registry)
        return [_schema_error(error) for error in validator.iter_errors(value)]


def _json_loads(value: bytes, **parameters: str) -> Any:
    return json.loads(value)


def _load(name: str, document: Mapping[str, Any], started: float) -> Description:
    config = Config(
        security_provider_factory=StrictSecurityProviderFactory(),
        # X answers problems as application/problem+json (RFC 7807), which openapi-core
        # would otherwise hand to the schema as raw bytes.
        extra_media_type_deserializers={"application/problem+json": _json_loads},
    )
    # from_dict also validates the document itself (openapi-spec-validator).
    api = OpenAPI(SchemaPath.from_dict(dict(document)), config=config)
    return Description(name, api, document, time.perf_counter() - started)


@functools.cache
def x_description() -> Description:
    """X's own description, loaded once (about a second: the whole file is used)."""
    started = time.perf_counter()
    document = json.loads(X_DESCRIPTION.read_bytes())
    return _load(X_DESCRIPTION.name, document, started)


@functools.cache
def token_description() -> Description:
    """Our description of ``POST /2/oauth2/token`` (X's does not describe it)."""
    started = time.perf_counter()
    document = yaml.safe_load(TOKEN_DESCRIPTION.read_text(encoding="utf-8"))
    return _load(TOKEN_DESCRIPTION.name, document, started)


def description_for(path: str) -> Description:
    return token_description() if path == TOKEN_PATH else x_description()


# --- building the protocol objects --------------------------------------------------------


def api_path(url: str) -> str:
    """The ``/2/...`` path of ``url``, whatever scheme, host and prefix come before it."""
    path = urlsplit(url).path or "/"
    if path.startswith("/2/"):
        return path
    index = path.find("/2/")
    return path[index:] if index >= 0 else path


def _content_type(headers: Headers) -> str:
    return (headers.get("Content-Type") or "").strip().lower()


def _request(
    method: str, url: str, headers: Mapping[str, str], body: bytes, description: Description
) -> XRequest:
    header = Headers(list(headers.items()))
    query = ImmutableMultiDict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    return XRequest(
        host_url=description.server_url,
        path=api_path(url),
        method=method.lower(),
        body=body or None,
        content_type=_content_type(header),
        parameters=RequestParameters(query=query, header=header),
    )


# --- readable errors ----------------------------------------------------------------------


def _schema_error(error: Any) -> str:
    """One jsonschema complaint: where in the value, and what; a oneOf's per-branch reasons."""
    where = "/".join(str(p) for p in getattr(error, "absolute_path", ())) or "(root)"
    line = f"at {where}: {getattr(error, 'message', error)}"
    branches: dict[str, list[str]] = {}
    for sub in getattr(error, "context", None) or ():
        branch = str(sub.schema_path[0]) if sub.schema_path else "?"
        branches.setdefault(branch, []).append(_schema_error(sub))
    for branch, reasons in branches.items():
        line += f"\n    (branch {branch}: {'; '.join(reasons)})"
    return line


def _with_schema_errors(error: BaseException | None) -> bool:
    for _ in range(6):
        if error is None:
            return False
        if getattr(error, "schema_errors", None):
            return True
        error = error.__cause__ or error.__context__
    return False


def _explain(error: BaseException, depth: int = 0) -> Iterator[str]:
    """``error``, its causes and, for a schema mismatch, each of jsonschema's complaints."""
    indent = "  " * depth
    schema_errors: Iterable[Any] = getattr(error, "schema_errors", None) or ()
    if schema_errors:  # the error's own text repeats them less readably
        yield f"{indent}- {type(error).__name__}, the value does not match its schema:"
        for schema_error in schema_errors:
            yield f"{indent}  - {_schema_error(schema_error)}"
        return
    cause = error.__cause__ or error.__context__
    if _with_schema_errors(cause):  # its text repeats them too
        yield f"{indent}- {type(error).__name__}"
        yield from _explain(cause, depth + 1)  # type: ignore[arg-type]
        return
    text = str(error)
    if len(text) > 300:
        text = text[:300] + "…"
    yield f"{indent}- {type(error).__name__}: {text}"
    if cause is not None and depth < 5 and not isinstance(cause, StopIteration):
        yield from _explain(cause, depth + 1)


def _fail(what: str, description: Description, problems: list[BaseException | str]) -> None:
    if not problems:
        return
    lines = [f"{what} does not match {description.name}:"]
    for problem in problems:
        if isinstance(problem, str):
            lines.append(f"- {problem}")
        else:
            lines.extend(_explain(problem))
    raise AssertionError("\n".join(lines))


# --- our own checks (see the module docstring) ------------------------------------------


def _resolve(description: Description, node: Any) -> Any:
    """``node`` with a local ``$ref`` followed (repeatedly)."""
    for _ in range(20):
        if not isinstance(node, Mapping) or not isinstance(node.get("$ref"), str):
            return node
        target: Any = description.document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    raise AssertionError(f"$ref chain too long in {description.name}")


def _operation(description: Description, path: str, method: str) -> Mapping[str, Any] | None:
    item = description.document.get("paths", {}).get(path)
    operation = None if item is None else item.get(method)
    return operation if isinstance(operation, Mapping) else None


def _undeclared_query(description: Description, request: XRequest) -> list[str]:
    operation = _operation(description, request.path, request.method)
    if operation is None:
        return []  # openapi-core reports the unknown path or method
    item = description.document["paths"][request.path]
    parameters = [
        _resolve(description, p)
        for p in [*item.get("parameters", []), *operation.get("parameters", [])]
    ]
    declared = {p["name"] for p in parameters if p.get("in") == "query"}
    return [
        f"query parameter {name!r} is not declared for {request.method.upper()} "
        f"{request.path} (declared: {', '.join(sorted(declared)) or 'none'})"
        for name in request.parameters.query
        if name not in declared
    ]


def _security_reasons(description: Description, request: XRequest) -> list[str]:
    """Why each security scheme of the operation was not met (openapi-core only says none)."""
    operation = _operation(description, request.path, request.method) or {}
    requirements = operation.get("security", description.document.get("security", []))
    schemes = description.api.spec / "components" / "securitySchemes"
    factory = StrictSecurityProviderFactory()
    reasons = []
    for requirement in requirements:
        for name in requirement:
            try:
                factory.create(schemes / name)(request.parameters)
            except SecurityProviderError as exc:
                reasons.append(f"{name}: {exc}")
    return [f"no security requirement met ({'; '.join(reasons)})"] if reasons else []


def _media(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _form_body(description: Description, request: XRequest) -> list[str]:
    """The form as sent, every field of it, against the operation's form schema."""
    operation = _operation(description, request.path, request.method)
    if operation is None or _media(request.content_type) != "application/x-www-form-urlencoded":
        return []
    content = _resolve(description, operation.get("requestBody", {})).get("content", {})
    if "application/x-www-form-urlencoded" not in content:
        return []
    pairs = parse_qsl((request.body or b"").decode("utf-8", "replace"), keep_blank_values=True)
    names = [name for name, _ in pairs]
    problems = [
        f"form field {name!r} appears {names.count(name)} times (RFC 6749 3.2: at most once)"
        for name in sorted(set(names))
        if names.count(name) > 1
    ]
    ref = "#/paths/{}/{}/requestBody/content/application~1x-www-form-urlencoded/schema".format(
        request.path.replace("~", "~0").replace("/", "~1"), request.method
    )
    problems += [f"form body {e}" for e in description.schema_errors(ref, dict(pairs))]
    return problems


def _token_client(request: XRequest) -> list[str]:
    authorization = str(request.parameters.header.get("Authorization") or "")
    if authorization:
        # The description lets a token request through with ClientBasic or with nothing,
        # so openapi-core never refuses a bad Authorization header here: we do.
        basic = {"type": "http", "scheme": "basic"}
        try:
            HttpProvider(SchemaPath.from_dict(basic))(request.parameters)
        except SecurityProviderError as exc:
            return [f"a token request authenticates with HTTP Basic or not at all: {exc}"]
        return []
    if _media(request.content_type) != "application/x-www-form-urlencoded":
        return []  # openapi-core reports the media type
    form = dict(parse_qsl((request.body or b"").decode("utf-8", "replace")))
    if form.get("client_id"):
        return []
    return ["a public client's token request (no HTTP Basic) must send client_id in the form"]


def _discriminated(
    description: Description, schema: Any, value: Any, where: str, depth: int = 0
) -> Iterator[str]:
    """Apply each ``discriminator`` met on the way through ``value`` (openapi-core does not)."""
    schema = _resolve(description, schema)
    if depth > 12 or not isinstance(schema, Mapping):
        return
    discriminator = schema.get("discriminator")
    if isinstance(discriminator, Mapping) and isinstance(value, Mapping):
        chosen = value.get(discriminator.get("propertyName", ""))
        target = (discriminator.get("mapping") or {}).get(chosen)
        if isinstance(target, str) and target.startswith("#/"):
            for error in description.schema_errors(target, value):
                name = target.rsplit("/", 1)[-1]
                yield f"{where} is a {name} ({chosen!r}) but {error}"
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key) or ():
            yield from _discriminated(description, part, value, where, depth + 1)
    if isinstance(value, Mapping):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                yield from _discriminated(
                    description, sub, value[name], f"{where}/{name}", depth + 1
                )
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _discriminated(
                description, schema["items"], item, f"{where}/{index}", depth + 1
            )


def _response_schema(
    description: Description, request: XRequest, response: XResponse
) -> Mapping[str, Any] | None:
    """The schema the description gives this status and content type, if any."""
    operation = _operation(description, request.path, request.method)
    if operation is None:
        return None
    responses = operation.get("responses", {})
    declared = responses.get(str(response.status_code), responses.get("default"))
    content = _resolve(description, declared or {}).get("content", {})
    media = content.get(_media(response.content_type))
    if not isinstance(media, Mapping) or not isinstance(media.get("schema"), Mapping):
        return None
    schema: Mapping[str, Any] = media["schema"]
    return schema


def _response_discriminators(
    description: Description, request: XRequest, response: XResponse
) -> list[str]:
    schema = _response_schema(description, request, response)
    if schema is None or not response.data:
        return []
    try:
        value = json.loads(response.data)
    except ValueError:
        return []  # openapi-core reports it
    return list(_discriminated(description, schema, value, "(body)"))


# --- the checks -----------------------------------------------------------------------------


def validate_x_request(method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
    """Raise AssertionError, saying why, if this request is not one X's description allows."""
    description = description_for(api_path(url))
    request = _request(method, url, headers, body, description)
    problems: list[BaseException | str] = list(
        description.api.request_validator.iter_errors(request)
    )
    if any(isinstance(p, SecurityValidationError) for p in problems):
        problems.extend(_security_reasons(description, request))
    problems.extend(_undeclared_query(description, request))
    form_problems = _form_body(description, request)
    if form_problems:
        # openapi-core's own complaint about a form body it could not match ("{} is not
        # valid...", having dropped the fields it did not know) says less than ours.
        problems = [p for p in problems if not isinstance(p, InvalidRequestBody)]
        problems.extend(form_problems)
    if request.path == TOKEN_PATH:
        problems.extend(_token_client(request))
    _fail(f"{method.upper()} {request.path}", description, problems)


def validate_x_response(
    method: str, url: str, status: int, headers: Mapping[str, str], body: bytes
) -> None:
    """Raise AssertionError, saying why, if X's description does not allow this answer."""
    description = description_for(api_path(url))
    request = _request(method, url, {}, b"", description)
    header = Headers(list(headers.items()))
    response = XResponse(
        status_code=status, content_type=_content_type(header), headers=header, data=body or None
    )
    problems: list[BaseException | str] = list(
        description.api.response_validator.iter_errors(request, response)
    )
    if not problems:
        problems.extend(_response_discriminators(description, request, response))
    schema = _response_schema(description, request, response)
    if problems and schema is not None:
        problems.insert(
            0,
            f"the description's schema for HTTP {status} {_media(response.content_type)} "
            f"is {schema.get('$ref', 'inline')}",
        )
    _fail(f"HTTP {status} answering {method.upper()} {request.path}", description, problems)
