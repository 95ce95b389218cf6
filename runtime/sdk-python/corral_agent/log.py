"""Structured lines in the session log (and span events in the trace).

:class:`LogHandler` forwards the standard :mod:`logging` module here.
"""

from __future__ import annotations

import logging

from . import host as _host


def write(level: str, message: str, **fields: object) -> None:
    """Writes one line at ``level`` (trace, debug, info, warn, error); over the
    invocation's log budget the host drops and counts it."""
    _host.current().log(level, message, {k: str(v) for k, v in fields.items()})


def debug(message: str, **fields: object) -> None:
    """Writes a debug line."""
    write("debug", message, **fields)


def info(message: str, **fields: object) -> None:
    """Writes an info line."""
    write("info", message, **fields)


def warn(message: str, **fields: object) -> None:
    """Writes a warning."""
    write("warn", message, **fields)


def error(message: str, **fields: object) -> None:
    """Writes an error line."""
    write("error", message, **fields)


class LogHandler(logging.Handler):
    """A :mod:`logging` handler writing records to the session log."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.WARNING:
            level = "warn"
        elif record.levelno >= logging.INFO:
            level = "info"
        else:
            level = "debug"
        try:
            write(level, self.format(record), logger=record.name)
        except Exception:  # a log line must never fail the agent
            self.handleError(record)
