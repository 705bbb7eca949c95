"""Turns the user's credential into request headers, on the running event loop.

Supported credentials:

* a ``str`` key, sent as-is in every header named by ``key_headers``
  (``authorization`` carries ``Bearer <key>``);
* :class:`azure.core.credentials.AzureKeyCredential`, whose ``.key`` is read on every
  request, so ``credential.update(new_key)`` takes effect at once;
* a synchronous token credential (``get_token_info`` or ``get_token``, for example
  ``azure.identity.DefaultAzureCredential``), called in a worker thread so the event loop
  never blocks;
* an asynchronous token credential (for example ``azure.identity.aio.DefaultAzureCredential``),
  awaited on the running loop;
* ``None``: no authentication header at all (local servers).

Tokens are sent as ``authorization: Bearer <token>``. They are cached and refreshed when the
token's ``refresh_on`` time comes, or ``refresh_margin`` seconds before it expires. Only one
refresh runs at a time; concurrent requests either keep using the still-valid token or wait
for that single refresh. Keys and tokens never appear in messages, ``repr`` or logs.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

import anyio
import anyio.to_thread
from azure.core.credentials import AzureKeyCredential, TokenCredential
from azure.core.credentials_async import AsyncTokenCredential

from .exceptions import CredentialError, RequestValidationError

__all__ = ["Authenticator", "Credential"]

Credential: TypeAlias = str | AzureKeyCredential | TokenCredential | AsyncTokenCredential
"""What ``credential=`` accepts (``None`` is accepted too and means "no authentication")."""

_LOGGER = logging.getLogger(__name__)

_AUTHORIZATION = "authorization"
_REDACTED = "***"
_ACCEPTED = (
    "a str key, azure.core.credentials.AzureKeyCredential, a TokenCredential "
    "(e.g. azure.identity.DefaultAzureCredential), an AsyncTokenCredential "
    "(e.g. azure.identity.aio.DefaultAzureCredential), or None for no authentication"
)
_SCOPE_EXAMPLE = "https://cognitiveservices.azure.com/.default"
# After a failed refresh while the current token is still valid, wait this long (capped at
# the token's expiry) before asking the token source again, so a broken source is not asked
# once per request.
_RETRY_AFTER_FAILED_REFRESH = 10.0

_NONE = "none"
_KEY = "key"
_DYNAMIC_KEY = "dynamic-key"
_SYNC_TOKEN = "sync-token"
_ASYNC_TOKEN = "async-token"


def _is_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_key(key: object, source: str) -> str:
    """Return ``key`` if it can go in a header; raise RequestValidationError (without it) if not."""
    if not isinstance(key, str):
        raise RequestValidationError(
            f"the key from {source} must be a str, not {type(key).__name__}"
        )
    if not key:
        raise RequestValidationError(
            f"the key from {source} is empty; pass the key, or AzureKeyCredential('') with "
            "the key in your own headers={'api-key': ...} (or {'Authorization': 'Bearer ...'})"
        )
    if _CONTROL.search(key):
        raise RequestValidationError(
            f"the key from {source} contains a line break or another control character; "
            "check for a stray newline at its end"
        )
    return key


class Authenticator:
    """Adds the authentication header(s) for one credential to outgoing requests.

    ``key_headers`` names (in lower case) the headers that carry a key: ``authorization``
    carries ``Bearer <key>``, any other name carries the raw key. Token credentials always use
    ``authorization: Bearer <token>`` and need ``token_scope``. ``refresh_margin`` is how many
    seconds before expiry a token is renewed (when the token gives no ``refresh_on``);
    ``token_timeout`` bounds each call to the token source (``None``: no bound).
    ``owns_credential`` makes :meth:`aclose` close the credential. ``clock`` returns the
    current time in epoch seconds, to compare with a token's ``expires_on``.
    """

    def __init__(
        self,
        credential: Credential | None,
        *,
        key_headers: tuple[str, ...],
        token_scope: str | None,
        refresh_margin: float = 300.0,
        token_timeout: float | None = 60.0,
        owns_credential: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not _is_seconds(refresh_margin) or not 0 <= refresh_margin < math.inf:
            raise RequestValidationError(
                f"refresh_margin must be a finite number of seconds >= 0, got {refresh_margin!r}"
            )
        if token_timeout is not None and not (_is_seconds(token_timeout) and token_timeout > 0):
            raise RequestValidationError(
                f"token_timeout must be a number of seconds > 0 or None, got {token_timeout!r}"
            )
        self._credential: object = credential
        self._key_headers = tuple(key_headers)
        self._scope = token_scope
        self._refresh_margin = float(refresh_margin)
        self._token_timeout = token_timeout
        self._owns_credential = owns_credential
        self._clock = clock
        self._closed = False
        self._static_key: str | None = None
        self._token_method: Callable[..., Any] | None = None
        self._method_name = ""
        # Token cache; touched only from the event loop thread.
        self._token: str | None = None
        self._seen_token: str | None = None  # kept after invalidate(), only for redaction
        self._expires_on = -math.inf
        self._refresh_at = -math.inf
        self._generation = 0
        self._outcome: str | CredentialError | None = None
        self._lock: anyio.Lock | None = None

        if credential is None:
            self._kind = _NONE
            self._name = "None"
            return
        self._name = type(credential).__name__
        if isinstance(credential, str):
            self._kind = _KEY
            self._static_key = _check_key(credential, "credential")
            self._check_key_headers()
            return
        if isinstance(credential, AzureKeyCredential):
            self._kind = _DYNAMIC_KEY
            self._check_key_headers()
            return
        if isinstance(credential, type):
            raise RequestValidationError(
                f"credential must be an instance, got the class {credential.__name__}; "
                f"write {credential.__name__}() instead"
            )
        method, name = self._find_token_method(credential)
        if method is None:
            raise RequestValidationError(
                f"credential of type {self._name} is not supported; pass {_ACCEPTED}"
            )
        if not token_scope:
            raise RequestValidationError(
                f"a token credential ({self._name}) needs a token scope: pass "
                f'token_scope= (e.g. token_scope="{_SCOPE_EXAMPLE}")'
            )
        self._token_method = method
        self._method_name = name
        self._kind = _ASYNC_TOKEN if inspect.iscoroutinefunction(method) else _SYNC_TOKEN

    @staticmethod
    def _find_token_method(credential: object) -> tuple[Callable[..., Any] | None, str]:
        for name in ("get_token_info", "get_token"):
            method = getattr(credential, name, None)
            if callable(method):
                return method, name
        return None, ""

    def _check_key_headers(self) -> None:
        if not self._key_headers:
            raise RequestValidationError(
                f"key_headers is empty: a {self._name} key needs at least one header name"
            )
        for name in self._key_headers:
            if not isinstance(name, str) or not name or name != name.lower() or ":" in name:
                raise RequestValidationError(
                    f"key_headers must hold lower-case header names, got {name!r}"
                )

    @property
    def uses_credentials(self) -> bool:
        """True unless the credential is ``None`` (no authentication)."""
        return self._kind != _NONE

    async def apply(self, headers: dict[str, str]) -> None:
        """Add the authentication header(s) to ``headers`` (in place).

        Raises :class:`~inference.exceptions.CredentialError` if the token source fails or
        times out and no valid token is cached.
        """
        kind = self._kind
        if kind == _NONE:
            return
        if kind == _KEY:
            assert self._static_key is not None
            self._set_key(headers, self._static_key)
        elif kind == _DYNAMIC_KEY:
            credential = self._credential
            assert isinstance(credential, AzureKeyCredential)
            if credential.key == "" and self._caller_sent_key(headers):
                return  # AzureKeyCredential("") beside the caller's own api-key header
            self._set_key(headers, _check_key(credential.key, "AzureKeyCredential.key"))
        else:
            headers[_AUTHORIZATION] = "Bearer " + await self._bearer_token()

    def _key_header_names(self) -> set[str]:
        """The (lower-case) headers that carry a key or token: ``api-key``,
        ``authorization`` and this endpoint's key headers."""
        return {name.lower() for name in self._key_headers} | {"api-key", _AUTHORIZATION}

    def _caller_sent_key(self, headers: Mapping[str, str]) -> bool:
        """Whether ``headers`` already carry a key the caller set (``api-key``,
        ``Authorization`` or one of this endpoint's key headers, in any case)."""
        names = self._key_header_names()
        return any(name.lower() in names and value for name, value in headers.items())

    def check_caller_headers(self, headers: Mapping[str, str], where: str) -> None:
        """Refuse a key or token header in the caller's ``headers`` (named ``where`` in the
        message) beside a credential that sets its own; ``AzureKeyCredential("")`` is the
        way to send one's own key header, and lets it through."""
        if self._kind == _NONE or not headers:
            return
        credential = self._credential
        if isinstance(credential, AzureKeyCredential) and credential.key == "":
            return
        names = self._key_header_names()
        for name in headers:
            if name.lower() in names:
                raise RequestValidationError(
                    f"{where} set the header {name!r}, which conflicts with the credential "
                    f"({self._name}): the credential sets that header itself. Pass the key "
                    f"as the credential and drop the header, or pass AzureKeyCredential('') "
                    f"as the credential to send your own {name!r} header"
                )

    def _set_key(self, headers: dict[str, str], key: str) -> None:
        for name in self._key_headers:
            headers[name] = f"Bearer {key}" if name == _AUTHORIZATION else key

    def invalidate(self) -> None:
        """Forget the cached token, so the next :meth:`apply` asks the credential again.

        Meant for a 401 answer: the token was refused. A no-op for keys.
        """
        self._token = None
        self._expires_on = -math.inf
        self._refresh_at = -math.inf
        self._outcome = None
        self._generation += 1

    async def aclose(self) -> None:
        """Close the credential if this Authenticator owns it (``owns_credential=True``).

        Otherwise nothing is closed: the caller keeps ownership. Safe to call more than once.
        """
        if self._closed:
            return
        self._closed = True
        self.invalidate()
        if not self._owns_credential or self._kind not in (_SYNC_TOKEN, _ASYNC_TOKEN):
            return
        close = getattr(self._credential, "close", None)
        if not callable(close):
            return
        if inspect.iscoroutinefunction(close):
            await close()
        else:
            result = await anyio.to_thread.run_sync(close)
            if inspect.isawaitable(result):
                await result

    def __repr__(self) -> str:
        if self._kind == _NONE:
            return "<Authenticator no credential>"
        if self._kind in (_KEY, _DYNAMIC_KEY):
            headers = ",".join(self._key_headers)
            return f"<Authenticator {self._name} key={_REDACTED} headers={headers}>"
        mode = "async" if self._kind == _ASYNC_TOKEN else "sync"
        cached = "cached" if self._token is not None else "none"
        return (
            f"<Authenticator {self._name} ({mode}) scope={self._scope} "
            f"token={cached} headers={_AUTHORIZATION}>"
        )

    # -- tokens -------------------------------------------------------------------------

    def _get_lock(self) -> anyio.Lock:
        # Created on first use, inside the running loop (never in __init__, which may run in
        # a thread without one).
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    async def _bearer_token(self) -> str:
        while True:
            token = self._token
            now = self._clock()
            if token is not None and now < self._refresh_at:
                return token
            lock = self._get_lock()
            if lock.locked() and token is not None and now < self._expires_on:
                # Another task is refreshing; the current token is still good meanwhile.
                return token
            generation = self._generation
            async with lock:
                if self._generation == generation:
                    return await self._refresh()
                # A refresh (or an invalidation) finished while this task waited: share its
                # outcome rather than asking the token source again.
                outcome = self._outcome
                if isinstance(outcome, str):
                    return outcome
                if isinstance(outcome, CredentialError):
                    raise CredentialError(str(outcome)) from outcome.__cause__
            # Invalidated while waiting: start over.

    async def _refresh(self) -> str:
        """Ask the token source for a token; the caller holds the lock."""
        try:
            token, expires_on, refresh_on = await self._fetch()
        except CredentialError as exc:
            self._generation += 1
            now = self._clock()
            if self._token is not None and now < self._expires_on:
                _LOGGER.warning(
                    "%s; using the current token, which expires in %.0f s",
                    exc,
                    self._expires_on - now,
                )
                self._refresh_at = min(now + _RETRY_AFTER_FAILED_REFRESH, self._expires_on)
                self._outcome = self._token
                return self._token
            self._token = None
            self._outcome = exc
            raise
        now = self._clock()
        refresh_at = expires_on - self._refresh_margin
        if refresh_on is not None and refresh_on > now:
            refresh_at = min(refresh_on, expires_on)
        if refresh_at <= now:
            # Short-lived token (or a margin larger than its life): refresh halfway through
            # what is left, instead of on every request.
            refresh_at = now + max(0.0, expires_on - now) / 2
        self._token = self._seen_token = token
        self._expires_on = expires_on
        self._refresh_at = refresh_at
        self._outcome = token
        self._generation += 1
        _LOGGER.debug(
            "%s.%s gave a token for %s expiring in %.0f s; next refresh in %.0f s",
            self._name,
            self._method_name,
            self._scope,
            expires_on - now,
            refresh_at - now,
        )
        return token

    async def _fetch(self) -> tuple[str, float, float | None]:
        """Call the token source under ``token_timeout``; map every failure to CredentialError."""
        what = f"{self._name}.{self._method_name}"
        timed_out = CredentialError(
            f"{what} timed out: no token for scope {self._scope!r} within "
            f"{self._token_timeout} s (token_timeout)"
        )
        with anyio.move_on_after(self._token_timeout) as scope:
            try:
                result = await self._call_token_source()
            except Exception as exc:
                if scope.cancel_called:
                    raise timed_out from exc
                detail = self._redact(str(exc)) or "(no message)"
                raise CredentialError(
                    f"{what} failed to get a token for scope {self._scope!r}: "
                    f"{type(exc).__name__}: {detail}"
                ) from exc
            return self._parse(result, what)
        raise timed_out

    async def _call_token_source(self) -> object:
        method = self._token_method
        assert method is not None and self._scope is not None
        if self._kind == _ASYNC_TOKEN:
            return await method(self._scope)
        result = await anyio.to_thread.run_sync(
            functools.partial(method, self._scope), abandon_on_cancel=True
        )
        if inspect.isawaitable(result):
            # A get_token that is a plain function returning an awaitable.
            awaitable: Awaitable[object] = result
            return await awaitable
        return result

    @staticmethod
    def _parse(result: object, what: str) -> tuple[str, float, float | None]:
        token = getattr(result, "token", None)
        expires_on = getattr(result, "expires_on", None)
        refresh_on = getattr(result, "refresh_on", None)
        if not isinstance(token, str) or not token:
            raise CredentialError(
                f"{what} returned {type(result).__name__} without a token string; "
                "expected AccessToken or AccessTokenInfo"
            )
        if isinstance(expires_on, bool) or not isinstance(expires_on, int | float):
            raise CredentialError(
                f"{what} returned a token whose expires_on is not epoch seconds "
                f"({type(expires_on).__name__})"
            )
        if isinstance(refresh_on, bool) or not isinstance(refresh_on, int | float | None):
            refresh_on = None
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in token):
            raise CredentialError(f"{what} returned a token containing control characters")
        return token, float(expires_on), None if refresh_on is None else float(refresh_on)

    def redact(self, text: str) -> str:
        """``text`` with every key or token this Authenticator knows of replaced by ``***``
        (for messages built from what a server sent back). Secrets shorter than 8 characters
        (placeholders such as "key" in local setups) are left alone: replacing them would
        garble ordinary words."""
        secrets = [self._token, self._seen_token, self._static_key]
        if isinstance(self._credential, AzureKeyCredential):
            secrets.append(self._credential.key)
        for secret in secrets:
            if secret and len(secret) >= 8:
                text = text.replace(secret, _REDACTED)
        return text

    def _redact(self, text: str) -> str:
        """Remove any secret this Authenticator knows of from ``text``."""
        secrets = [self._token, self._seen_token, self._static_key]
        if isinstance(self._credential, AzureKeyCredential):
            secrets.append(self._credential.key)
        for secret in secrets:
            if secret:
                text = text.replace(secret, _REDACTED)
        return text
