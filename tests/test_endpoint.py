"""Tests for inference._endpoint: kind detection, URLs, api-version, key headers, scopes."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from inference import _endpoint
from inference._endpoint import (
    DEFAULT_API_VERSIONS,
    UNSET,
    Endpoint,
    EndpointKind,
    is_secure_for_credentials,
    resolve_endpoint,
)
from inference.exceptions import RequestValidationError

K = EndpointKind
AI_VERSION = "2024-05-01-preview"
AOAI_VERSION = "2024-10-21"
COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
ML_SCOPE = "https://ml.azure.com/.default"
HAS_INFO = {K.AZURE_AI_MODELS, K.AZURE_AI_SERVERLESS, K.AZURE_OPENAI_DEPLOYMENT}

# Per kind: (default api-version, key headers, default token scope).
KIND_DEFAULTS: dict[EndpointKind, tuple[str | None, tuple[str, ...], str | None]] = {
    K.AZURE_AI_MODELS: (AI_VERSION, ("api-key", "authorization"), COGNITIVE_SCOPE),
    K.AZURE_AI_SERVERLESS: (AI_VERSION, ("api-key", "authorization"), ML_SCOPE),
    K.AZURE_OPENAI_DEPLOYMENT: (AOAI_VERSION, ("api-key",), COGNITIVE_SCOPE),
    K.AZURE_OPENAI_V1: (None, ("api-key",), COGNITIVE_SCOPE),
    K.GITHUB_MODELS: (None, ("authorization",), None),
    K.OPENAI_COMPATIBLE: (None, ("authorization",), None),
}

SERVICES = "https://res.services.ai.azure.com"
COGNITIVE = "https://res.cognitiveservices.azure.com"
AOAI = "https://res.openai.azure.com"
SERVERLESS = "https://mistral-large.eastus2.models.ai.azure.com"
GITHUB = "https://models.github.ai"

# (endpoint as given, kind, base_url, api_version); chat and info URLs follow from base_url.
DETECTION_CASES: list[tuple[str, EndpointKind, str, str | None]] = [
    # Azure AI Model Inference (/models)
    (f"{SERVICES}/models", K.AZURE_AI_MODELS, f"{SERVICES}/models", AI_VERSION),
    (f"{SERVICES}/models/", K.AZURE_AI_MODELS, f"{SERVICES}/models", AI_VERSION),
    (f"{SERVICES}/models/chat/completions", K.AZURE_AI_MODELS, f"{SERVICES}/models", AI_VERSION),
    (
        f"{SERVICES}/models/chat/completions?api-version=2024-08-01-preview",
        K.AZURE_AI_MODELS,
        f"{SERVICES}/models",
        "2024-08-01-preview",
    ),
    (SERVICES, K.AZURE_AI_MODELS, f"{SERVICES}/models", AI_VERSION),
    (f"{SERVICES}/", K.AZURE_AI_MODELS, f"{SERVICES}/models", AI_VERSION),
    (f"{COGNITIVE}/models/", K.AZURE_AI_MODELS, f"{COGNITIVE}/models", AI_VERSION),
    (f"  {SERVICES}/models  \n", K.AZURE_AI_MODELS, f"{SERVICES}/models", AI_VERSION),
    (
        "HTTPS://RES.Services.AI.Azure.com/models",
        K.AZURE_AI_MODELS,
        f"{SERVICES}/models",
        AI_VERSION,
    ),
    # Azure AI serverless
    (SERVERLESS, K.AZURE_AI_SERVERLESS, SERVERLESS, AI_VERSION),
    (f"{SERVERLESS}/", K.AZURE_AI_SERVERLESS, SERVERLESS, AI_VERSION),
    (
        "https://Mistral-Large.EastUS2.models.ai.azure.com/chat/completions?api-version=2024-05-01-preview",
        K.AZURE_AI_SERVERLESS,
        SERVERLESS,
        AI_VERSION,
    ),
    # Azure OpenAI deployments, on every Azure host
    (
        f"{AOAI}/openai/deployments/gpt-4o",
        K.AZURE_OPENAI_DEPLOYMENT,
        f"{AOAI}/openai/deployments/gpt-4o",
        AOAI_VERSION,
    ),
    (
        f"{AOAI}/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview",
        K.AZURE_OPENAI_DEPLOYMENT,
        f"{AOAI}/openai/deployments/gpt-4o",
        "2025-01-01-preview",
    ),
    (
        f"{SERVICES}/openai/deployments/gpt-4o/",
        K.AZURE_OPENAI_DEPLOYMENT,
        f"{SERVICES}/openai/deployments/gpt-4o",
        AOAI_VERSION,
    ),
    (
        f"{COGNITIVE}/openai/deployments/My-Deployment",
        K.AZURE_OPENAI_DEPLOYMENT,
        f"{COGNITIVE}/openai/deployments/My-Deployment",
        AOAI_VERSION,
    ),
    # Azure OpenAI v1
    (f"{AOAI}/openai/v1", K.AZURE_OPENAI_V1, f"{AOAI}/openai/v1", None),
    (f"{AOAI}/openai/v1/", K.AZURE_OPENAI_V1, f"{AOAI}/openai/v1", None),
    (f"{AOAI}/openai/v1?api-version=preview", K.AZURE_OPENAI_V1, f"{AOAI}/openai/v1", "preview"),
    (
        f"{SERVICES}/openai/v1/chat/completions",
        K.AZURE_OPENAI_V1,
        f"{SERVICES}/openai/v1",
        None,
    ),
    (f"{COGNITIVE}/openai/v1", K.AZURE_OPENAI_V1, f"{COGNITIVE}/openai/v1", None),
    # GitHub Models
    (f"{GITHUB}/inference", K.GITHUB_MODELS, f"{GITHUB}/inference", None),
    (GITHUB, K.GITHUB_MODELS, f"{GITHUB}/inference", None),
    (f"{GITHUB}/", K.GITHUB_MODELS, f"{GITHUB}/inference", None),
    (f"{GITHUB}/inference/chat/completions", K.GITHUB_MODELS, f"{GITHUB}/inference", None),
    (
        f"{GITHUB}/orgs/my-org/inference/",
        K.GITHUB_MODELS,
        f"{GITHUB}/orgs/my-org/inference",
        None,
    ),
    (
        "https://models.inference.ai.azure.com",
        K.GITHUB_MODELS,
        "https://models.inference.ai.azure.com",
        None,
    ),
    # OpenAI-compatible servers
    ("http://localhost:8000/v1", K.OPENAI_COMPATIBLE, "http://localhost:8000/v1", None),
    (
        "http://localhost:8000/v1/chat/completions/",
        K.OPENAI_COMPATIBLE,
        "http://localhost:8000/v1",
        None,
    ),
    ("http://127.0.0.1:11434/v1/", K.OPENAI_COMPATIBLE, "http://127.0.0.1:11434/v1", None),
    ("http://[::1]:8080", K.OPENAI_COMPATIBLE, "http://[::1]:8080", None),
    ("http://LocalHost:8080/", K.OPENAI_COMPATIBLE, "http://localhost:8080", None),
    ("http://localhost:8000/chat/completions", K.OPENAI_COMPATIBLE, "http://localhost:8000", None),
    ("https://api.example.com/v1", K.OPENAI_COMPATIBLE, "https://api.example.com/v1", None),
    (
        "https://gateway.example.com/v1?api-version=2024-01-01",
        K.OPENAI_COMPATIBLE,
        "https://gateway.example.com/v1",
        "2024-01-01",
    ),
    # A local emulator impersonating the Azure kinds by path
    ("http://127.0.0.1:8000/models", K.AZURE_AI_MODELS, "http://127.0.0.1:8000/models", AI_VERSION),
    ("http://[::1]:8000/models/", K.AZURE_AI_MODELS, "http://[::1]:8000/models", AI_VERSION),
    (
        "http://127.0.0.1:8000/openai/deployments/dep",
        K.AZURE_OPENAI_DEPLOYMENT,
        "http://127.0.0.1:8000/openai/deployments/dep",
        AOAI_VERSION,
    ),
    (
        "http://localhost:8000/openai/deployments/dep/chat/completions?api-version=2024-06-01",
        K.AZURE_OPENAI_DEPLOYMENT,
        "http://localhost:8000/openai/deployments/dep",
        "2024-06-01",
    ),
    (
        "http://127.0.0.1:8000/openai/v1",
        K.AZURE_OPENAI_V1,
        "http://127.0.0.1:8000/openai/v1",
        None,
    ),
    ("http://[::1]:9/openai/v1/", K.AZURE_OPENAI_V1, "http://[::1]:9/openai/v1", None),
    # OpenAI's own API under /openai/v1 on a non-Azure host takes Bearer keys.
    (
        "https://api.groq.com/openai/v1",
        K.OPENAI_COMPATIBLE,
        "https://api.groq.com/openai/v1",
        None,
    ),
]


@pytest.mark.parametrize(
    ("given", "kind", "base_url", "api_version"),
    DETECTION_CASES,
    ids=[case[0].strip() for case in DETECTION_CASES],
)
def test_detection(given: str, kind: EndpointKind, base_url: str, api_version: str | None) -> None:
    """Each endpoint URL resolves to the expected kind, URLs, api-version, headers and scope."""
    endpoint = resolve_endpoint(given)
    _, headers, scope = KIND_DEFAULTS[kind]
    assert endpoint == Endpoint(
        kind=kind,
        base_url=base_url,
        chat_completions_url=base_url + "/chat/completions",
        info_url=base_url + "/info" if kind in HAS_INFO else None,
        api_version=api_version,
        key_headers=headers,
        token_scope=scope,
    )
    assert endpoint.query() == ({} if api_version is None else {"api-version": api_version})


def test_detection_table_covers_every_kind() -> None:
    """The detection table exercises every endpoint kind at least twice."""
    for kind in EndpointKind:
        assert sum(case[1] is kind for case in DETECTION_CASES) >= 2, kind


# A local emulator can stand in for every kind: by path where the kind is known by its path,
# by kind= where the kind is known by its host.
LOOPBACK_CASES: list[tuple[str, EndpointKind | str | None, EndpointKind, str]] = [
    ("http://127.0.0.1:8000/models", None, K.AZURE_AI_MODELS, "/models/chat/completions"),
    ("http://127.0.0.1:8000", "azure_ai_serverless", K.AZURE_AI_SERVERLESS, "/chat/completions"),
    (
        "http://127.0.0.1:8000/openai/deployments/d",
        None,
        K.AZURE_OPENAI_DEPLOYMENT,
        "/openai/deployments/d/chat/completions",
    ),
    ("http://127.0.0.1:8000/openai/v1", None, K.AZURE_OPENAI_V1, "/openai/v1/chat/completions"),
    (
        "http://127.0.0.1:8000/inference",
        K.GITHUB_MODELS,
        K.GITHUB_MODELS,
        "/inference/chat/completions",
    ),
    ("http://127.0.0.1:8000/v1", None, K.OPENAI_COMPATIBLE, "/v1/chat/completions"),
]


@pytest.mark.parametrize(("given", "override", "kind", "chat_path"), LOOPBACK_CASES)
def test_loopback_impersonates_every_kind(
    given: str, override: EndpointKind | str | None, kind: EndpointKind, chat_path: str
) -> None:
    """A server on 127.0.0.1 can be addressed as any kind, with that kind's defaults."""
    endpoint = resolve_endpoint(given, kind=override)
    version, headers, scope = KIND_DEFAULTS[kind]
    assert endpoint.kind is kind
    assert endpoint.chat_completions_url == "http://127.0.0.1:8000" + chat_path
    assert endpoint.api_version == version
    assert endpoint.key_headers == headers
    assert endpoint.token_scope == scope
    assert (endpoint.info_url is not None) == (kind in HAS_INFO)


def test_loopback_cases_cover_every_kind() -> None:
    """The loopback table has one row per endpoint kind."""
    assert {case[2] for case in LOOPBACK_CASES} == set(EndpointKind)


# --- overrides ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (K.GITHUB_MODELS, K.GITHUB_MODELS),
        ("azure_openai_v1", K.AZURE_OPENAI_V1),
        ("AZURE_AI_SERVERLESS", K.AZURE_AI_SERVERLESS),
        (" azure-openai-deployment ", K.AZURE_OPENAI_DEPLOYMENT),
        ("openai_compatible", K.OPENAI_COMPATIBLE),
    ],
)
def test_kind_override_accepts_members_values_and_names(
    kind: EndpointKind | str, expected: EndpointKind
) -> None:
    """kind= takes a member, its value or its name, and brings that kind's defaults along."""
    endpoint = resolve_endpoint("http://localhost:8000/v1", kind=kind)
    version, headers, scope = KIND_DEFAULTS[expected]
    assert endpoint.kind is expected
    assert endpoint.base_url == "http://localhost:8000/v1"
    assert (endpoint.api_version, endpoint.key_headers, endpoint.token_scope) == (
        version,
        headers,
        scope,
    )


@pytest.mark.parametrize(
    ("given", "kind", "base_url"),
    [
        (AOAI, K.AZURE_OPENAI_V1, AOAI),
        (f"{AOAI}/openai", K.OPENAI_COMPATIBLE, f"{AOAI}/openai"),
        (SERVICES, K.AZURE_AI_MODELS, SERVICES),
        (GITHUB, K.GITHUB_MODELS, GITHUB),
        (f"{SERVICES}/models", K.OPENAI_COMPATIBLE, f"{SERVICES}/models"),
    ],
)
def test_kind_override_turns_detection_off(given: str, kind: EndpointKind, base_url: str) -> None:
    """With kind= the URL is used as given: no error on bare Azure hosts, no path appended."""
    endpoint = resolve_endpoint(given, kind=kind)
    assert endpoint.kind is kind
    assert endpoint.base_url == base_url
    assert endpoint.chat_completions_url == base_url + "/chat/completions"


@pytest.mark.parametrize("kind", ["azure", "", "AzureOpenAI", 3, ["azure_openai_v1"]])
def test_kind_override_rejects_unknown_kinds(kind: Any) -> None:
    """An unknown kind= raises RequestValidationError listing the valid kinds."""
    with pytest.raises(RequestValidationError) as info:
        resolve_endpoint("http://localhost:8000/v1", kind=kind)
    for member in EndpointKind:
        assert member.value in str(info.value)


@pytest.mark.parametrize(
    "client_class",
    [
        "ChatCompletionsClient",
        "EmbeddingsClient",
        "aio.ChatCompletionsClient",
        "aio.EmbeddingsClient",
    ],
)
def test_a_client_names_endpoint_kind_when_it_is_unknown(client_class: str) -> None:
    """The clients take the kind as endpoint_kind=: an unknown one is refused naming that
    keyword (not resolve_endpoint's kind=) and listing every valid kind."""
    import inference
    import inference.aio

    module, _, name = client_class.rpartition(".")
    cls = getattr(inference.aio if module else inference, name)
    with pytest.raises(RequestValidationError) as info:
        cls("http://localhost:8000/v1", "key", endpoint_kind="bogus")
    message = str(info.value)
    assert message.startswith("endpoint_kind='bogus' is not an endpoint kind; use one of ")
    for member in EndpointKind:
        assert repr(member.value) in message


@pytest.mark.parametrize(
    ("given", "api_version", "expected"),
    [
        (f"{SERVICES}/models", UNSET, AI_VERSION),
        (f"{SERVICES}/models", "2025-05-01", "2025-05-01"),
        (f"{SERVICES}/models", None, None),
        (f"{SERVICES}/models?api-version=2024-08-01-preview", UNSET, "2024-08-01-preview"),
        (f"{SERVICES}/models?api-version=2024-08-01-preview", "2025-05-01", "2025-05-01"),
        (f"{SERVICES}/models?api-version=2024-08-01-preview", None, None),
        (f"{AOAI}/openai/deployments/d", None, None),
        (f"{AOAI}/openai/v1", UNSET, None),
        (f"{AOAI}/openai/v1", "preview", "preview"),
        ("http://localhost:8000/v1", "2024-01-01", "2024-01-01"),
    ],
)
def test_api_version_override(given: str, api_version: Any, expected: str | None) -> None:
    """api_version= beats the endpoint's query, None sends none, UNSET keeps query or default."""
    endpoint = resolve_endpoint(given, api_version=api_version)
    assert endpoint.api_version == expected
    assert endpoint.query() == ({} if expected is None else {"api-version": expected})
    assert "?" not in endpoint.base_url
    assert "?" not in endpoint.chat_completions_url


@pytest.mark.parametrize("api_version", ["", " ", "2024 05 01", 20240501])
def test_api_version_override_rejects_invalid(api_version: Any) -> None:
    """An empty, spaced or non-string api_version= raises RequestValidationError."""
    with pytest.raises(RequestValidationError, match="api_version"):
        resolve_endpoint(f"{SERVICES}/models", api_version=api_version)


@pytest.mark.parametrize(
    ("key_header", "expected"),
    [
        ("Authorization", ("authorization",)),
        ("API-Key", ("api-key",)),
        (" x-api-key ", ("x-api-key",)),
        (["Ocp-Apim-Subscription-Key"], ("ocp-apim-subscription-key",)),
        (("api-key", "Authorization"), ("api-key", "authorization")),
        (["Authorization", "authorization", "api-key"], ("authorization", "api-key")),
    ],
)
def test_key_header_override(key_header: str | Sequence[str], expected: tuple[str, ...]) -> None:
    """key_header= replaces the kind's headers, lower-cased, in order, without duplicates."""
    for given in (f"{SERVICES}/models", f"{AOAI}/openai/v1", "http://localhost:8000/v1"):
        assert resolve_endpoint(given, key_header=key_header).key_headers == expected


@pytest.mark.parametrize("key_header", ["", "  ", "bad header", "api-key:", [], [""], [7]])
def test_key_header_override_rejects_invalid(key_header: Any) -> None:
    """Empty or malformed header names raise RequestValidationError naming key_header."""
    with pytest.raises(RequestValidationError, match="key_header"):
        resolve_endpoint("http://localhost:8000/v1", key_header=key_header)


@pytest.mark.parametrize(
    ("given", "scope"),
    [
        (f"{SERVICES}/models", "https://ai.azure.com/.default"),
        (SERVERLESS, COGNITIVE_SCOPE),
        ("http://localhost:8000/v1", "api://my-app/.default"),
        (f"{GITHUB}/inference", "api://other/.default"),
    ],
)
def test_token_scope_override(given: str, scope: str) -> None:
    """token_scope= replaces the kind's scope, also for kinds that have none by default."""
    assert resolve_endpoint(given, token_scope=scope).token_scope == scope


@pytest.mark.parametrize("scope", ["", "   ", 5])
def test_token_scope_override_rejects_invalid(scope: Any) -> None:
    """An empty or non-string token_scope= raises RequestValidationError naming token_scope."""
    with pytest.raises(RequestValidationError, match="token_scope"):
        resolve_endpoint(f"{SERVICES}/models", token_scope=scope)


def test_overrides_leave_other_choices_alone() -> None:
    """Each override changes its own field only."""
    plain = resolve_endpoint(f"{SERVICES}/models")
    assert attrs.evolve(plain, key_headers=("x-key",)) == resolve_endpoint(
        f"{SERVICES}/models", key_header="X-Key"
    )
    assert attrs.evolve(plain, token_scope="s") == resolve_endpoint(
        f"{SERVICES}/models", token_scope="s"
    )
    assert attrs.evolve(plain, api_version=None) == resolve_endpoint(
        f"{SERVICES}/models", api_version=None
    )


# --- errors ------------------------------------------------------------------------------

EXAMPLE = "https://models.github.ai/inference"

# (endpoint, fragments the message must contain)
ERROR_CASES: list[tuple[Any, tuple[str, ...]]] = [
    ("", ("is empty", EXAMPLE)),
    ("   ", ("is empty", EXAMPLE)),
    ("example.com/v1", ("http:// or https://", "did you mean 'https://example.com/v1'")),
    ("localhost:8000/v1", ("http:// or https://", EXAMPLE)),
    ("ftp://example.com/v1", ("http:// or https://", EXAMPLE)),
    ("ws://localhost:8000/v1", ("http:// or https://", EXAMPLE)),
    ("https://", ("no host", EXAMPLE)),
    ("https:///models", ("no host", EXAMPLE)),
    ("http://local host:8000/v1", ("whitespace", EXAMPLE)),
    ("http://localhost:99999/v1", ("cannot be parsed", EXAMPLE)),
    ("http://[::1/v1", ("cannot be parsed", EXAMPLE)),
    ("http://localhost:8000/v1?foo=bar", ("'foo'", "api-version", "api_version=")),
    (f"{SERVICES}/models?api-version=x&stream=true", ("'stream'", "api-version")),
    ("http://localhost:8000/v1?api-version=", ("api-version", "empty")),
    ("http://localhost:8000/v1?api-version=a&api-version=b", ("api-version twice",)),
    ("http://user:secret@localhost:8000/v1", ("password", "credential")),
    ("http://localhost:8000/v1#top", ("fragment",)),
    (AOAI, (f"{AOAI}/openai/deployments/<deployment>", f"{AOAI}/openai/v1")),
    (f"{AOAI}/", (f"{AOAI}/openai/deployments/<deployment>", f"{AOAI}/openai/v1")),
    (f"{AOAI}/openai", (f"{AOAI}/openai/deployments/<deployment>", f"{AOAI}/openai/v1")),
    (f"{AOAI}/openai/deployments/", (f"{AOAI}/openai/deployments/<deployment>",)),
    (
        f"{AOAI}/openai/deployments/d/completions",
        (f"{AOAI}/openai/deployments/<deployment>", "'/openai/deployments/d/completions'"),
    ),
    (
        COGNITIVE,
        (
            f"{COGNITIVE}/models",
            f"{COGNITIVE}/openai/deployments/<deployment>",
            f"{COGNITIVE}/openai/v1",
        ),
    ),
    (f"{SERVICES}/openai", (f"{SERVICES}/models", f"{SERVICES}/openai/v1")),
    (f"{SERVICES}/api/projects/p", (f"{SERVICES}/models", "'/api/projects/p'")),
    (None, ("string", EXAMPLE)),
    (b"https://example.com", ("string", EXAMPLE)),
]


@pytest.mark.parametrize(
    ("given", "fragments"), ERROR_CASES, ids=[repr(case[0]) for case in ERROR_CASES]
)
def test_bad_endpoints_say_what_to_fix(given: Any, fragments: tuple[str, ...]) -> None:
    """A bad endpoint raises RequestValidationError whose message says what an endpoint is."""
    with pytest.raises(RequestValidationError) as info:
        resolve_endpoint(given)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message


def test_openai_host_error_is_not_offered_models() -> None:
    """On an *.openai.azure.com host the error does not suggest the /models API."""
    with pytest.raises(RequestValidationError) as info:
        resolve_endpoint(AOAI)
    assert "/models" not in str(info.value)


# --- is_secure_for_credentials -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secure"),
    [
        ("https://example.com", True),
        ("HTTPS://Example.com/v1", True),
        ("https://10.0.0.1:8443/v1", True),
        ("http://127.0.0.1", True),
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.5.5.5", True),
        ("http://127.255.255.254:1/", True),
        ("http://[::1]", True),
        ("http://[::1]:8000/models", True),
        ("http://[::ffff:127.0.0.1]:80/", True),
        ("http://localhost", True),
        ("http://LOCALHOST:11434/v1", True),
        ("http://localhost./v1", True),
        ("http://example.com", False),
        ("http://10.0.0.1", False),
        ("http://192.168.1.10:8000/v1", False),
        ("http://0.0.0.0:8000", False),
        ("http://[::2]", False),
        ("http://[::ffff:10.0.0.1]", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1.example.com", False),
        ("http://128.0.0.1", False),
        ("ftp://localhost", False),
        ("ws://127.0.0.1", False),
        ("localhost:8000", False),
        ("https://", False),
        ("http://[::1", False),
        ("", False),
    ],
)
def test_is_secure_for_credentials(url: str, secure: bool) -> None:
    """https anywhere and http to loopback are secure; anything else is not."""
    assert is_secure_for_credentials(url) is secure


# --- the module as a whole ---------------------------------------------------------------


def test_defaults_cover_every_kind_and_are_read_only() -> None:
    """DEFAULT_API_VERSIONS has an entry per kind, matches the table, and cannot be changed."""
    assert {kind: DEFAULT_API_VERSIONS[kind] for kind in EndpointKind} == {
        kind: defaults[0] for kind, defaults in KIND_DEFAULTS.items()
    }
    with pytest.raises(TypeError):
        DEFAULT_API_VERSIONS[K.OPENAI_COMPATIBLE] = "x"  # type: ignore[index]


def test_endpoint_is_frozen_and_kind_is_a_string() -> None:
    """Endpoint cannot be mutated, and kinds compare equal to their string values."""
    endpoint = resolve_endpoint(f"{SERVICES}/models")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        endpoint.base_url = "x"  # type: ignore[misc]
    assert endpoint.kind == "azure_ai_models"
    assert isinstance(endpoint.kind, str)
    assert repr(UNSET) == "UNSET"


def test_protocol_module_imports_no_io_libraries() -> None:
    """_endpoint imports neither aiohttp nor anyio (protocol code does no I/O)."""
    tree = ast.parse(inspect.getsource(_endpoint))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"aiohttp", "anyio", "asyncio", "socket", "httpx", "requests"}


def _docstring_table() -> dict[str, list[str]]:
    doc = _endpoint.__doc__ or ""
    rows: dict[str, list[str]] = {}
    for line in doc.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_docstring_table_matches_behaviour() -> None:
    """The README table in the module docstring agrees with what resolve_endpoint does."""
    rows = _docstring_table()
    assert set(rows) == {kind.value for kind in EndpointKind}
    for value, (_, example, chat_path, version, headers, scope) in rows.items():
        url = example.strip("`").replace("<resource>", "res").replace("<deployment>", "dep")
        url = url.replace("<name>.<region>", "n.r")
        endpoint = resolve_endpoint(url)
        assert endpoint.kind.value == value
        expected_path = chat_path.strip("`").replace("<deployment>", "dep")
        assert endpoint.chat_completions_url.endswith(expected_path)
        assert version.strip("`") == (endpoint.api_version or "none")
        assert scope.strip("`") == (endpoint.token_scope or "none")
        assert ("`api-key`" in headers) == ("api-key" in endpoint.key_headers)
        assert ("Bearer" in headers) == ("authorization" in endpoint.key_headers)
