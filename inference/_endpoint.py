"""Endpoint kinds: what an endpoint URL says about paths, ``api-version``, key headers and scope.

:func:`resolve_endpoint` turns the ``endpoint`` string a user passes to a client into an
:class:`Endpoint`: the kind of service behind it, the chat-completions and ``/info`` URLs,
the ``api-version`` query parameter (if any), the header(s) that carry a key and the default
Microsoft Entra ID token scope. Every choice can be overridden by an argument. The module
is pure: no I/O, no clock, no network look-ups.

Supported endpoints (``<endpoint>`` is the normalized endpoint; the chat URL is always
``<endpoint>/chat/completions``):

| Kind (`kind=`) | Example endpoint | Chat completions path | `api-version` | Key header(s) | Default Entra ID scope |
|---|---|---|---|---|---|
| `azure_ai_models` | `https://<resource>.services.ai.azure.com/models` | `/models/chat/completions` | `2024-05-01-preview` | `api-key` and `Authorization: Bearer` | `https://cognitiveservices.azure.com/.default` |
| `azure_ai_serverless` | `https://<name>.<region>.models.ai.azure.com` | `/chat/completions` | `2024-05-01-preview` | `api-key` and `Authorization: Bearer` | `https://ml.azure.com/.default` |
| `azure_openai_deployment` | `https://<resource>.openai.azure.com/openai/deployments/<deployment>` | `/openai/deployments/<deployment>/chat/completions` | `2024-10-21` | `api-key` | `https://cognitiveservices.azure.com/.default` |
| `azure_openai_v1` | `https://<resource>.openai.azure.com/openai/v1` | `/openai/v1/chat/completions` | none | `api-key` | `https://cognitiveservices.azure.com/.default` |
| `github_models` | `https://models.github.ai/inference` | `/inference/chat/completions` | none | `Authorization: Bearer` | none |
| `openai_compatible` | `http://localhost:8000/v1` | `/v1/chat/completions` | none | `Authorization: Bearer` | none |

``/info`` (model information) is requested at ``<endpoint>/info`` for the first three kinds;
the other kinds have no such route.

How the kind is detected (the first rule that matches wins):

1. The endpoint is stripped of whitespace and trailing slashes, then of a trailing
   ``/chat/completions``, so the full chat URL copied from a portal works too.
2. A path ending in ``/openai/deployments/<deployment>`` is ``azure_openai_deployment`` and a
   path ending in ``/openai/v1`` is ``azure_openai_v1``, on any host (gateways, custom domains
   and local emulators included).
3. ``models.github.ai`` and ``models.inference.ai.azure.com`` are ``github_models``;
   ``https://models.github.ai`` alone becomes ``https://models.github.ai/inference``.
4. A host under ``models.ai.azure.com`` is ``azure_ai_serverless``.
5. A path ending in ``/models`` is ``azure_ai_models`` on any host; a host under
   ``services.ai.azure.com`` with no path gets ``/models`` appended.
6. Any other path on an Azure AI resource host (``*.openai.azure.com``,
   ``*.services.ai.azure.com``, ``*.cognitiveservices.azure.com``) is refused with a
   :class:`~inference.exceptions.RequestValidationError` that names the URLs to use instead.
7. Anything else is ``openai_compatible``.

Because paths decide before the generic fallback, a local server on ``127.0.0.1`` can stand in
for the Azure kinds by serving ``/models``, ``/openai/deployments/<name>`` or ``/openai/v1``.
Passing ``kind=`` turns detection off entirely: the normalized URL is used as given.

Query strings: an ``api-version`` parameter in the endpoint is taken as the API version (an
explicit ``api_version=`` argument wins over it). Any other query parameter, a ``#fragment``
and a ``user:password@`` part are refused, because the client would otherwise silently drop
them or send them where they do not belong.
"""  # noqa: E501 (the table rows above are meant to be pasted into Markdown as they are)

from __future__ import annotations

import enum
import ipaddress
import re
import types
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import parse_qsl, urlsplit

import attrs

from inference.exceptions import RequestValidationError

__all__ = [
    "DEFAULT_API_VERSIONS",
    "UNSET",
    "Endpoint",
    "EndpointKind",
    "coerce_kind",
    "is_secure_for_credentials",
    "resolve_endpoint",
]


class EndpointKind(enum.StrEnum):
    """The kinds of chat-completions service the client can talk to.

    Values are the strings accepted by the ``kind=`` argument of :func:`resolve_endpoint`.
    """

    #: Azure AI Model Inference API: ``https://<resource>.services.ai.azure.com/models``.
    AZURE_AI_MODELS = "azure_ai_models"
    #: A serverless (pay-as-you-go) deployment: ``https://<name>.<region>.models.ai.azure.com``.
    AZURE_AI_SERVERLESS = "azure_ai_serverless"
    #: An Azure OpenAI deployment: ``https://<resource>.openai.azure.com/openai/deployments/<d>``.
    AZURE_OPENAI_DEPLOYMENT = "azure_openai_deployment"
    #: The Azure OpenAI v1 API: ``https://<resource>.openai.azure.com/openai/v1``.
    AZURE_OPENAI_V1 = "azure_openai_v1"
    #: GitHub Models: ``https://models.github.ai/inference``.
    GITHUB_MODELS = "github_models"
    #: Any server speaking the OpenAI chat-completions format (vLLM, llama.cpp, Ollama, ...).
    OPENAI_COMPATIBLE = "openai_compatible"


class _Unset(enum.Enum):
    """Type of :data:`UNSET`, the marker for "argument not given"."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: Marker for an argument that was not given (distinct from ``None``, which means "none").
UNSET: Final = _Unset.UNSET

_AI_INFERENCE_API_VERSION = "2024-05-01-preview"
_AZURE_OPENAI_GA_API_VERSION = "2024-10-21"
_COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
_MACHINE_LEARNING_SCOPE = "https://ml.azure.com/.default"

_K = EndpointKind

#: The ``api-version`` each kind sends when neither the caller nor the endpoint names one.
DEFAULT_API_VERSIONS: Final[Mapping[EndpointKind, str | None]] = types.MappingProxyType(
    {
        _K.AZURE_AI_MODELS: _AI_INFERENCE_API_VERSION,
        _K.AZURE_AI_SERVERLESS: _AI_INFERENCE_API_VERSION,
        _K.AZURE_OPENAI_DEPLOYMENT: _AZURE_OPENAI_GA_API_VERSION,
        _K.AZURE_OPENAI_V1: None,
        _K.GITHUB_MODELS: None,
        _K.OPENAI_COMPATIBLE: None,
    }
)

_KEY_HEADERS: Final[Mapping[EndpointKind, tuple[str, ...]]] = types.MappingProxyType(
    {
        _K.AZURE_AI_MODELS: ("api-key", "authorization"),
        _K.AZURE_AI_SERVERLESS: ("api-key", "authorization"),
        _K.AZURE_OPENAI_DEPLOYMENT: ("api-key",),
        _K.AZURE_OPENAI_V1: ("api-key",),
        _K.GITHUB_MODELS: ("authorization",),
        _K.OPENAI_COMPATIBLE: ("authorization",),
    }
)

_TOKEN_SCOPES: Final[Mapping[EndpointKind, str | None]] = types.MappingProxyType(
    {
        _K.AZURE_AI_MODELS: _COGNITIVE_SERVICES_SCOPE,
        _K.AZURE_AI_SERVERLESS: _MACHINE_LEARNING_SCOPE,
        _K.AZURE_OPENAI_DEPLOYMENT: _COGNITIVE_SERVICES_SCOPE,
        _K.AZURE_OPENAI_V1: _COGNITIVE_SERVICES_SCOPE,
        _K.GITHUB_MODELS: None,
        _K.OPENAI_COMPATIBLE: None,
    }
)

_KINDS_WITH_INFO: Final = frozenset(
    {_K.AZURE_AI_MODELS, _K.AZURE_AI_SERVERLESS, _K.AZURE_OPENAI_DEPLOYMENT}
)

_CHAT_SUFFIX = "/chat/completions"
_DEPLOYMENT_PATH = re.compile(r"/openai/deployments/[^/]+\Z", re.IGNORECASE)
_V1_PATH = re.compile(r"/openai/v1\Z", re.IGNORECASE)
_MODELS_PATH = re.compile(r"/models\Z", re.IGNORECASE)
_GITHUB_HOSTS = frozenset({"models.github.ai", "models.inference.ai.azure.com"})
_GITHUB_DEFAULT_PATH = "/inference"
_SERVERLESS_HOST_SUFFIX = ".models.ai.azure.com"
_AZURE_OPENAI_HOST_SUFFIX = ".openai.azure.com"
_AI_SERVICES_HOST_SUFFIX = ".services.ai.azure.com"
_COGNITIVE_HOST_SUFFIX = ".cognitiveservices.azure.com"
# RFC 9110 token characters (lower-case only: names are normalized first).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")

_EXAMPLES = (
    "https://<resource>.services.ai.azure.com/models, "
    "https://<name>.<region>.models.ai.azure.com, "
    "https://<resource>.openai.azure.com/openai/deployments/<deployment>, "
    "https://<resource>.openai.azure.com/openai/v1, "
    "https://models.github.ai/inference, "
    "http://localhost:8000/v1"
)


@attrs.frozen
class Endpoint:
    """A resolved endpoint: where to send requests and how to authenticate them.

    ``base_url`` is normalized (lower-case scheme and host, no trailing slash, no query).
    ``key_headers`` holds lower-case header names; ``"authorization"`` carries
    ``Bearer <key>``, any other name carries the key itself. ``token_scope`` is the default
    Entra ID scope, or ``None`` when this kind takes no Entra ID token unless a scope is given.
    """

    kind: EndpointKind
    base_url: str
    chat_completions_url: str
    info_url: str | None
    api_version: str | None
    key_headers: tuple[str, ...]
    token_scope: str | None

    @property
    def embeddings_url(self) -> str:
        """Where embeddings requests go: ``<base_url>/embeddings`` for every kind."""
        return self.base_url + "/embeddings"

    def query(self) -> dict[str, str]:
        """The query parameters every request carries: ``{"api-version": ...}`` or ``{}``."""
        if self.api_version is None:
            return {}
        return {"api-version": self.api_version}


@attrs.frozen
class _Parsed:
    scheme: str
    netloc: str
    host: str
    path: str
    api_version: str | None


def _shown(endpoint: str) -> str:
    """The endpoint as error messages show it: no user info, query values or fragment (where
    people paste keys and signatures)."""
    base, sep, _ = endpoint.strip().split("#", 1)[0].partition("?")
    base = re.sub(r"//[^/@]*@", "//***@", base)
    return base + ("?..." if sep else "")


def _invalid(endpoint: str, problem: str) -> RequestValidationError:
    return RequestValidationError(
        f"endpoint {_shown(endpoint)!r} {problem}. An endpoint is an http:// or https:// URL "
        f"such as {_EXAMPLES}."
    )


def _parse(endpoint: object) -> _Parsed:
    if not isinstance(endpoint, str):
        raise RequestValidationError(
            f"endpoint must be a string URL, got {type(endpoint).__name__}. Examples: {_EXAMPLES}."
        )
    text = endpoint.strip()
    if not text:
        raise _invalid(endpoint, "is empty")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise _invalid(endpoint, "contains whitespace or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise _invalid(endpoint, f"cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        hint = f" (did you mean 'https://{text}'?)" if "://" not in text else ""
        raise _invalid(endpoint, f"must start with http:// or https://{hint}")
    if not host:
        raise _invalid(endpoint, "has no host name")
    if parts.username is not None or parts.password is not None:
        raise _invalid(
            endpoint,
            "contains a user name or password; remove it and pass the key as the credential",
        )
    if parts.fragment:
        raise _invalid(endpoint, "is followed by a '#' fragment (not shown); remove it")
    api_version = _api_version_from_query(endpoint, parts.query)
    bracketed = f"[{host}]" if ":" in host else host
    netloc = bracketed if port is None else f"{bracketed}:{port}"
    path = parts.path.rstrip("/")
    if path.endswith(_CHAT_SUFFIX):
        path = path[: -len(_CHAT_SUFFIX)].rstrip("/")
    return _Parsed(scheme, netloc, host.rstrip("."), path, api_version)


def _api_version_from_query(endpoint: str, query: str) -> str | None:
    found: str | None = None
    others: list[str] = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name.lower() != "api-version":
            others.append(name)
        elif found is not None and value != found:
            raise _invalid(endpoint, f"gives api-version twice ({found!r} and {value!r})")
        else:
            found = value
    if others:
        names = ", ".join(repr(name) for name in others)
        raise _invalid(
            endpoint,
            f"has query parameter(s) {names}; only api-version is supported in the endpoint "
            "(pass it as api_version=, or remove the query string)",
        )
    if found is not None and (not found or any(ch.isspace() for ch in found)):
        raise _invalid(endpoint, "has an empty or malformed api-version query parameter")
    return found


def _is_azure_resource_host(host: str) -> bool:
    return host.endswith(
        (_AZURE_OPENAI_HOST_SUFFIX, _AI_SERVICES_HOST_SUFFIX, _COGNITIVE_HOST_SUFFIX)
    )


def _azure_resource_error(endpoint: str, parsed: _Parsed) -> RequestValidationError:
    root = f"{parsed.scheme}://{parsed.netloc}"
    choices = [
        f"'{root}/openai/deployments/<deployment>' (an Azure OpenAI deployment)",
        f"'{root}/openai/v1' (the Azure OpenAI v1 API, model chosen by model=)",
    ]
    if not parsed.host.endswith(_AZURE_OPENAI_HOST_SUFFIX):
        choices.append(f"'{root}/models' (the Azure AI Model Inference API)")
    if parsed.path:
        problem = f"has a path ({parsed.path!r}) that names no API this client can call"
    else:
        problem = "names an Azure AI resource but not which API of it to call"
    return RequestValidationError(
        f"endpoint {_shown(endpoint)!r} {problem}; use {', or '.join(choices)}."
    )


def _detect(endpoint: str, parsed: _Parsed) -> tuple[EndpointKind, str]:
    host, path = parsed.host, parsed.path
    if _DEPLOYMENT_PATH.search(path):
        return EndpointKind.AZURE_OPENAI_DEPLOYMENT, path
    if _V1_PATH.search(path) and (_is_azure_resource_host(host) or _is_loopback_host(host)):
        # Other hosts serve OpenAI's own API under /openai/v1 (Groq, for one): Bearer keys.
        return EndpointKind.AZURE_OPENAI_V1, path
    if host in _GITHUB_HOSTS:
        if host == "models.github.ai" and not path:
            path = _GITHUB_DEFAULT_PATH
        return EndpointKind.GITHUB_MODELS, path
    if host.endswith(_SERVERLESS_HOST_SUFFIX):
        return EndpointKind.AZURE_AI_SERVERLESS, path
    if _MODELS_PATH.search(path):
        return EndpointKind.AZURE_AI_MODELS, path
    if host.endswith(_AI_SERVICES_HOST_SUFFIX) and not path:
        return EndpointKind.AZURE_AI_MODELS, "/models"
    if _is_azure_resource_host(host):
        raise _azure_resource_error(endpoint, parsed)
    return EndpointKind.OPENAI_COMPATIBLE, path


def coerce_kind(kind: EndpointKind | str, keyword: str = "kind") -> EndpointKind:
    """``kind`` as an :class:`EndpointKind` (a member, or its value in any letter case);
    anything else raises :class:`~inference.exceptions.RequestValidationError` naming the
    caller's ``keyword`` and listing the kinds."""
    if isinstance(kind, EndpointKind):
        return kind
    if isinstance(kind, str):
        try:
            return EndpointKind(kind.strip().lower().replace("-", "_"))
        except ValueError:
            pass
    valid = ", ".join(repr(member.value) for member in EndpointKind)
    raise RequestValidationError(
        f"{keyword}={kind!r} is not an endpoint kind; use one of {valid} "
        "(or an EndpointKind member)."
    )


def _check_api_version(api_version: object) -> str | None:
    if api_version is None:
        return None
    if (
        not isinstance(api_version, str)
        or not api_version
        or any(ch.isspace() for ch in api_version)
    ):
        raise RequestValidationError(
            f"api_version={api_version!r} is not a valid API version; pass a version string "
            "such as '2024-05-01-preview', or None to send no api-version."
        )
    return api_version


def _normalize_key_headers(key_header: str | Sequence[str]) -> tuple[str, ...]:
    names = [key_header] if isinstance(key_header, str) else list(key_header)
    if not names:
        raise RequestValidationError(
            "key_header is empty; pass a header name such as 'api-key' or 'Authorization', "
            "or leave it as None for the endpoint's default."
        )
    normalized: list[str] = []
    for name in names:
        lowered = name.strip().lower() if isinstance(name, str) else None
        if lowered is None or not _HEADER_NAME.match(lowered):
            raise RequestValidationError(
                f"key_header={name!r} is not a valid HTTP header name; pass a name such as "
                "'api-key' or 'Authorization'."
            )
        if lowered not in normalized:
            normalized.append(lowered)
    return tuple(normalized)


def _check_token_scope(token_scope: object) -> str:
    if not isinstance(token_scope, str) or not token_scope.strip():
        raise RequestValidationError(
            f"token_scope={token_scope!r} is not a valid scope; pass a scope such as "
            f"'{_COGNITIVE_SERVICES_SCOPE}', or None for the endpoint's default."
        )
    return token_scope.strip()


def resolve_endpoint(
    endpoint: str,
    *,
    kind: EndpointKind | str | None = None,
    api_version: str | _Unset | None = UNSET,
    key_header: str | Sequence[str] | None = None,
    token_scope: str | None = None,
) -> Endpoint:
    """Work out the kind, URLs, ``api-version``, key headers and token scope of ``endpoint``.

    ``kind`` (an :class:`EndpointKind` or its string value) skips detection and uses the
    endpoint URL as given. ``api_version``: a string to send, ``None`` to send none, or
    :data:`UNSET` (the default) for the ``api-version`` in the endpoint's query string, else
    the kind's default from :data:`DEFAULT_API_VERSIONS`. ``key_header``: one header name or
    several to carry a key instead of the kind's default (case-insensitive;
    ``"authorization"`` means ``Bearer <key>``). ``token_scope``: the Entra ID scope to
    request instead of the kind's default.

    Raises :class:`~inference.exceptions.RequestValidationError` for an endpoint that is not
    an http(s) URL with a host, that has query parameters other than ``api-version``, or that
    is an Azure AI resource URL without a usable path, and for invalid override arguments.
    """
    parsed = _parse(endpoint)
    if kind is None:
        resolved, path = _detect(endpoint, parsed)
    else:
        resolved, path = coerce_kind(kind), parsed.path
    if isinstance(api_version, _Unset):
        version = parsed.api_version
        if version is None:
            version = DEFAULT_API_VERSIONS[resolved]
    else:
        version = _check_api_version(api_version)
    headers = _KEY_HEADERS[resolved] if key_header is None else _normalize_key_headers(key_header)
    scope = _TOKEN_SCOPES[resolved] if token_scope is None else _check_token_scope(token_scope)
    base = f"{parsed.scheme}://{parsed.netloc}{path}"
    return Endpoint(
        kind=resolved,
        base_url=base,
        chat_completions_url=base + _CHAT_SUFFIX,
        info_url=base + "/info" if resolved in _KINDS_WITH_INFO else None,
        api_version=version,
        key_headers=headers,
        token_scope=scope,
    )


def _is_loopback_host(host: str) -> bool:
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_secure_for_credentials(url: str) -> bool:
    """True for https URLs and for http URLs whose host is a loopback address.

    Loopback means ``127.0.0.0/8``, ``::1`` (also as ``::ffff:127.x.y.z``) and the name
    ``localhost``. Every other URL, including one that cannot be parsed or has no host, is
    False: a key or token must not travel over plain http across a network.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except (ValueError, AttributeError):
        return False
    if not host:
        return False
    scheme = parts.scheme.lower()
    if scheme == "https":
        return True
    return scheme == "http" and _is_loopback_host(host)
