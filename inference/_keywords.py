"""Unknown and missing keyword arguments: the error that names the function called and the
keyword most likely meant.

Every public function that takes keywords refuses a misspelt one with a
:class:`~inference.exceptions.RequestValidationError` built here: ``complete()`` (through
:func:`inference._params.prepare_call`), the constructors' options (through
:func:`inference._options.check_options`) and ``load_client()``'s, and the functions wrapped
by :func:`checked_keywords` (``run_tools()``, ``stream_tools()``, ``embed()``,
``get_model_info()``, the constructors and ``load_client()`` themselves). The suggestion
is taken from every keyword the function accepts, its named parameters as well as the keys
of its ``**params: Unpack[...]``: the same name in another letter case or with ``_``/``-``
left out, a trailing ``s`` more or less (``ies`` for ``y``), one letter wrong, missing,
extra or swapped with its neighbour, and last a close match by :mod:`difflib`.

Nothing here runs on a call whose keywords are all known but the one set test that says so.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, TypeVar, Unpack, cast, get_args, get_origin, get_type_hints, is_typeddict

from ._values import show
from .exceptions import RequestValidationError

__all__ = [
    "BODY_EXTRAS",
    "EXTRAS",
    "check_names",
    "checked_keywords",
    "closest",
    "missing_keyword",
    "unknown_keyword",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Where a parameter the library does not name goes: in a chat request, and in a client's
#: defaults or an embeddings request.
BODY_EXTRAS = "model_extras={...} or extra_body={...}"
EXTRAS = "model_extras={...}"

# What to say, instead of a suggestion, about a keyword a function does not take although a
# user may well try it (by the function's name as errors show it).
_NOTES: dict[str, dict[str, str]] = {
    "run_tools()": {
        "stream": "run_tools() does not take stream=: use stream_tools() for a streamed run",
        "body": "run_tools() takes messages= and keyword parameters, not a body",
    },
    "stream_tools()": {
        "stream": "stream_tools() streams already: leave stream= out "
        "(run_tools() runs the same loop without streaming)",
        "body": "stream_tools() takes messages= and keyword parameters, not a body",
    },
}


def _constructor_notes(client: str) -> dict[str, str]:
    """openai-python's names for the constructor arguments (``OpenAI(base_url=...,
    api_key=...)``): not parameters to pass through in ``model_extras``."""
    return {
        "api_key": f"{client}() takes the key as its credential, the second argument (or "
        f"credential=), not api_key=: {client}(endpoint, key)",
        "base_url": f"{client}() takes the URL as its endpoint, the first argument (or "
        f"endpoint=), not base_url=: {client}(endpoint, key)",
        "max_retries": f"{client}() takes retry= (a number of retries, or a RetryPolicy), "
        "not max_retries=: retry=2",
        "default_headers": f"{client}() takes headers= for the headers of every request, "
        "not default_headers=",
        "default_query": f"{client}() takes the query in the endpoint URL (api-version as "
        "api_version=), or extra_query= per call, not default_query=",
        "http_client": f"{client}() takes session= (an aiohttp.ClientSession you close), "
        "not http_client=",
        "organization": f"{client}() has no organization=: send the OpenAI-Organization "
        'header with headers={"OpenAI-Organization": ...}',
        "project": f"{client}() has no project=: send the OpenAI-Project header with "
        'headers={"OpenAI-Project": ...}',
    }


_NOTES.update(
    {f"{c}()": _constructor_notes(c) for c in ("ChatCompletionsClient", "EmbeddingsClient")}
)

# How to give a required argument, for the error that says it is missing.
_EXAMPLES = {
    "messages": 'messages=[UserMessage("Hello")]',
    "tools": "tools=[a_function]",
    "input": 'input=["some text"]',
    "endpoint": 'the endpoint URL as its first argument, e.g. {call}("https://...")',
}

# Keywords whose value an error does not repeat (a key given under a name not taken,
# api_key="..." or credentail="...": the message may be logged).
_SECRET_WORDS = ("key", "token", "secret", "password", "credential", "auth")

# The shortest name a one-letter difference is taken as a typo of ("x" is not "n").
_SHORTEST_TYPO = 3
# How alike (difflib's ratio) a name must be to be suggested when no rule above matched.
_DIFFLIB_CUTOFF = 0.75


def _folded(name: str) -> str:
    return name.casefold().replace("_", "").replace("-", "")


def _shown(value: Any, *names: str | None) -> str:
    """``value`` for an error about a keyword; not shown when its name, or the name it was
    taken for, says it may be a secret."""
    for name in names:
        if name is not None and any(word in _folded(name) for word in _SECRET_WORDS):
            return "<not shown>"
    return show(value)


def _one_edit(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one letter changed, added or removed, or two neighbours
    swapped."""
    if a == b or abs(len(a) - len(b)) > 1 or min(len(a), len(b)) < _SHORTEST_TYPO:
        return False
    if len(a) == len(b):
        wrong = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(wrong) == 1:
            return True
        return (
            len(wrong) == 2
            and wrong[1] == wrong[0] + 1
            and (a[wrong[0]], a[wrong[1]]) == (b[wrong[1]], b[wrong[0]])
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((i for i, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
    return short[i:] == long[i + 1 :]


def _plural(a: str, b: str) -> bool:
    """Whether one is the other with an ``s`` more (``retries`` and ``retry`` too)."""
    short, long = sorted((a, b), key=len)
    return long == short + "s" or (short.endswith("y") and long == short[:-1] + "ies")


def closest(name: str, candidates: Collection[str]) -> str | None:
    """The name in ``candidates`` that ``name`` most likely misspells, or None.

    Tried in turn, the first rule that matches wins (the most alike by :mod:`difflib` among
    several): the same letters in another case or without ``_`` and ``-``; a trailing ``s``
    more or less (``retries`` for ``retry``); one letter changed, added or removed, or two
    neighbours swapped (ignoring case); then :func:`difflib.get_close_matches` with a high
    cutoff.
    """
    ranked = sorted(c for c in candidates if c != name)
    folded = _folded(name)
    lower = name.casefold()
    rules: tuple[Callable[[str], bool], ...] = (
        lambda c: _folded(c) == folded,
        lambda c: _plural(lower, c.casefold()) or _plural(folded, _folded(c)),
        lambda c: _one_edit(lower, c.casefold()) or _one_edit(folded, _folded(c)),
    )
    for rule in rules:
        found = [c for c in ranked if rule(c)]
        if found:
            return max(found, key=lambda c: difflib.SequenceMatcher(None, lower, c).ratio())
    close = difflib.get_close_matches(name, ranked, n=1, cutoff=_DIFFLIB_CUTOFF)
    return close[0] if close else None


def unknown_keyword(
    where: str,
    name: str,
    value: Any,
    candidates: Collection[str],
    elsewhere: str | None = None,
    settings: Collection[str] = (),
) -> RequestValidationError:
    """The error for ``name=value``, a keyword ``where`` (``"run_tools()"``) does not take;
    ``candidates`` are every keyword it does take, ``elsewhere`` where a parameter the
    library does not name may go (``"model_extras={...}"``). ``settings`` are candidates that
    are no request parameter (a constructor's connection options): when one of them is the
    name meant, ``elsewhere`` is not mentioned."""
    notes = _NOTES.get(where, {})
    note = next((n for key, n in notes.items() if _folded(key) == _folded(name)), None)
    if note is not None:
        return RequestValidationError(note)
    meant = closest(name, candidates)
    hint = ""
    if meant is not None:
        hint = notes.get(meant) or f"did you mean {meant}=?"
        hint = f"; {hint}"
    aside = ""
    if elsewhere and meant not in settings:
        aside = f" (a parameter this library does not name goes in {elsewhere})"
    return RequestValidationError(
        f"{where} got an unknown parameter {name}={_shown(value, name, meant)}{hint}{aside}"
    )


def missing_keyword(where: str, name: str) -> RequestValidationError:
    """The error for a required argument ``where`` was called without."""
    example = _EXAMPLES.get(name, f"{name}=...").format(call=where.removesuffix("()"))
    return RequestValidationError(f"{where} needs {example}")


def check_names(
    params: Mapping[str, Any],
    known: AbstractSet[str],
    where: str,
    elsewhere: str | None = None,
    named: Collection[str] = (),
    settings: Collection[str] = (),
) -> None:
    """Refuse a key of ``params`` (the ``**params`` of a call) that is not in ``known``,
    suggesting the closest of ``known`` and ``named`` (the function's named parameters);
    ``settings`` as :func:`unknown_keyword` takes them."""
    if params.keys() <= known:
        return
    for name, value in params.items():
        if name not in known:
            raise unknown_keyword(where, name, value, {*known, *named}, elsewhere, settings)


# -- the wrapper ------------------------------------------------------------------------------


def _where(function: Callable[..., Any]) -> str:
    if function.__name__ == "__init__":
        return f"{function.__qualname__.split('.')[-2]}()"
    return f"{function.__name__}()"


def _declared_keys(function: Callable[..., Any], var_keyword: str) -> frozenset[str] | None:
    """The keys of ``**var_keyword: Unpack[SomeTypedDict]``; None for a plain ``**kwargs``."""
    hint = get_type_hints(function).get(var_keyword)
    if get_origin(hint) is not Unpack:
        return None
    declared = get_args(hint)[0]
    if not is_typeddict(declared):
        raise TypeError(f"cannot tell which keywords **{var_keyword}: {hint} takes")
    keys: frozenset[str] = declared.__required_keys__ | declared.__optional_keys__
    return keys


class _Keywords:
    """What a function accepts by keyword, read once from its signature."""

    def __init__(self, function: Callable[..., Any], elsewhere: str | None) -> None:
        self.where = _where(function)
        self.elsewhere = elsewhere
        signature = inspect.signature(function).parameters
        self.bound = int("self" in signature)  # the instance comes first in args
        parameters = [p for p in signature.values() if p.name != "self"]
        by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.named = frozenset(p.name for p in parameters if p.kind in by_keyword)
        self.positional: Sequence[inspect.Parameter] = [
            p for p in parameters if p.kind in positional
        ]
        self.required = [
            p.name for p in parameters if p.default is p.empty and p.kind in by_keyword
        ]
        var = next((p.name for p in parameters if p.kind is p.VAR_KEYWORD), None)
        # The keywords the function takes; None when **kwargs takes any (the body checks).
        self.known: frozenset[str] | None = self.named
        if var is not None:
            declared = _declared_keys(function, var)
            self.known = None if declared is None else self.named | declared
        # Keywords only (besides the instance): checked before the call, with one set test.
        self.upfront = self.known is not None and not self.positional

    def refuse(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Raise the error for too many positional arguments, an unknown keyword or a
        missing argument, if there is one."""
        # The instance, if any, is the first positional argument; the signature has no self.
        by_position = len(args) - self.bound
        if by_position > len(self.positional):
            first = [p.name for p in self.positional]
            takes = f"{' and '.join(first)} by position and the rest" if first else "its arguments"
            named = ", ".join(f"{n}=..." for n in self.required if n not in first)
            example = f"; e.g. {self.where.removesuffix('()')}({named})" if named else ""
            raise RequestValidationError(
                f"{self.where} takes {takes} by name, got {by_position} positional "
                f"argument{'' if by_position == 1 else 's'}{example}"
            )
        given_by_position = {p.name for p in self.positional[: max(0, by_position)]}
        for name, value in kwargs.items():
            if name in given_by_position:
                shown = _shown(value, name)
                raise RequestValidationError(
                    f"{self.where} got {name} twice: by position and as {name}={shown}; "
                    "pass it once"
                )
        missing = [n for n in self.required if n not in kwargs and n not in given_by_position]
        if self.known is not None:
            for name, value in kwargs.items():
                if name not in self.known:
                    raise unknown_keyword(self.where, name, value, self.known, self.elsewhere)
        for name in missing:
            for given, value in kwargs.items():
                if closest(given, [name]) == name:
                    raise unknown_keyword(self.where, given, value, [name], self.elsewhere)
        if missing:
            raise missing_keyword(self.where, missing[0])


def checked_keywords(elsewhere: str | None = None) -> Callable[[F], F]:
    """A decorator: the function (or method) refuses an unknown keyword, a missing required
    argument and too many positional ones with a :class:`RequestValidationError` naming the
    function and the keyword meant (see :func:`closest`), instead of Python's ``TypeError``.

    A function that takes keywords only (``run_tools()``, ``embed()``) has them checked
    before it runs, with one set test; the keys of its ``**params: Unpack[...]`` count as
    keywords it takes. One with positional parameters (a constructor, ``load_client()``) has
    its ``**options`` checked by its body. Either way the ``TypeError`` Python raises for
    arguments that do not fit the signature is explained; one raised by the body, with
    arguments that fit, passes on. ``elsewhere`` says where a parameter the library does not
    name may go.
    """

    def decorate(function: F) -> F:
        spec = _Keywords(function, elsewhere)
        known = spec.known if spec.upfront else None
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def checked_async(*args: Any, **kwargs: Any) -> Any:
                if known is not None and not known.issuperset(kwargs):
                    spec.refuse(args, kwargs)
                try:
                    return await function(*args, **kwargs)
                except TypeError:
                    spec.refuse(args, kwargs)
                    raise

            return cast(F, checked_async)

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if known is not None and not known.issuperset(kwargs):
                spec.refuse(args, kwargs)
            try:
                return function(*args, **kwargs)
            except TypeError:
                spec.refuse(args, kwargs)
                raise

        return cast(F, checked)

    return decorate
