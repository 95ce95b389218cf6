"""Streams parts of the response before the invocation returns."""

from __future__ import annotations

import json
from typing import Any

from . import host as _host
from .host import StreamClosed, StreamLimitExceeded

__all__ = ["send", "StreamClosed", "StreamLimitExceeded"]


def encode(chunk: Any) -> bytes:
    """bytes as-is, str as UTF-8, anything else as one JSON line."""
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode()
    return (json.dumps(chunk) + "\n").encode()


def send(chunk: Any) -> None:
    """Sends one chunk to the caller (see :func:`encode`). Raises
    :class:`StreamClosed` when the caller left, :class:`StreamLimitExceeded`
    past the response size limit."""
    _host.current().send(encode(chunk))
