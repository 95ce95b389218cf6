"""The entry point: :class:`Agent` and its ``@agent.entrypoint`` decorator."""

from __future__ import annotations

import inspect
import json
import traceback
from dataclasses import dataclass
from types import GeneratorType
from typing import Any, Callable

from . import log, stream
from .errors import AgentError, InternalError, InvalidInput


@dataclass(frozen=True)
class Context:
    """Who and what an invocation is for."""

    #: The runtime session (stable across invocations; state in module
    #: globals lives exactly as long as it).
    session_id: str
    #: The end user or system the session acts for.
    actor_id: str
    #: Unique id of this invocation.
    request_id: str
    #: MIME type of the request body.
    content_type: str
    #: The request body as sent.
    body: bytes


@dataclass(frozen=True)
class Response:
    """An explicit response body and MIME type (return it from the entry point)."""

    payload: bytes
    content_type: str = "application/octet-stream"

    def __post_init__(self) -> None:
        if not isinstance(self.payload, (bytes, bytearray)):
            raise TypeError(
                f"Response payload must be bytes, not {type(self.payload).__name__}; "
                "use Response.text() or Response.json()"
            )
        if not isinstance(self.content_type, str):
            raise TypeError("Response content_type must be a str")

    @classmethod
    def text(cls, text: str) -> "Response":
        """A ``text/plain`` response."""
        return cls(text.encode(), "text/plain; charset=utf-8")

    @classmethod
    def json(cls, value: Any) -> "Response":
        """An ``application/json`` response."""
        return cls(json.dumps(value).encode(), "application/json")


Entrypoint = Callable[..., Any]


class Agent:
    """A Corral agent: register its entry point with ``@agent.entrypoint``.

    The entry point takes the payload (parsed JSON, else text) and, if it
    declares a second parameter, a :class:`Context`. It returns a ``dict``,
    ``list`` or number (sent as JSON), a ``str`` (text), ``bytes``, a
    :class:`Response`, or it ``yield``s chunks to stream them. Raising an
    :class:`AgentError` subclass fails the invocation with that case; any
    other exception fails it as ``internal`` and is logged with its traceback.
    """

    def __init__(self) -> None:
        self._entrypoint: Entrypoint | None = None
        self._wants_context = False

    def entrypoint(self, func: Entrypoint) -> Entrypoint:
        """Registers ``func`` as the handler of every invocation."""
        global _registered
        params = [
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if not params:
            raise TypeError("an entry point takes the payload (and optionally a Context)")
        self._entrypoint = func
        self._wants_context = len(params) >= 2
        _registered = self
        return func

    def handle(self, context: Context) -> Response:
        """Runs the entry point for one invocation; raises :class:`AgentError`."""
        if self._entrypoint is None:
            raise InternalError("no entry point registered; decorate one with @agent.entrypoint")
        payload = decode_payload(context.body, context.content_type)
        try:
            result = (
                self._entrypoint(payload, context)
                if self._wants_context
                else self._entrypoint(payload)
            )
            return to_response(result)
        except AgentError:
            raise
        except Exception as e:  # the agent's own bug: report it, keep the session
            log.error(
                f"entry point raised {type(e).__name__}: {e}",
                traceback="".join(traceback.format_exception(e))[-4000:],
            )
            raise InternalError(f"{type(e).__name__}: {e}") from e


_registered: Agent | None = None


def registered() -> Agent | None:
    """The agent whose entry point was registered last."""
    return _registered


def decode_payload(body: bytes, content_type: str) -> Any:
    """JSON bodies (or bodies that parse as JSON) become Python values, other
    UTF-8 bodies ``str``; anything else stays ``bytes``."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        if "json" in content_type:
            raise InvalidInput("payload is not UTF-8 text") from None
        return body
    try:
        return json.loads(text)
    except ValueError:
        if "json" in content_type:
            raise InvalidInput("payload is not valid JSON") from None
        return text


def prompt_of(payload: Any) -> str:
    """The user's prompt: the ``prompt`` (or ``input``, ``message``) field of an
    object payload, or a string payload itself."""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        for key in ("prompt", "input", "message"):
            value = payload.get(key)
            if isinstance(value, str):
                return value
    raise InvalidInput('payload needs a string field "prompt"')


def to_response(result: Any) -> Response:
    """Turns an entry point's return value into a :class:`Response`."""
    if isinstance(result, Response):
        return result
    if isinstance(result, GeneratorType):
        for chunk in result:
            stream.send(chunk)
        return Response(b"", "text/plain; charset=utf-8")
    if isinstance(result, str):
        return Response.text(result)
    if isinstance(result, (bytes, bytearray)):
        return Response(bytes(result))
    try:
        return Response.json(result)
    except TypeError as e:
        raise InternalError(f"entry point returned a value that is not JSON: {e}") from e
