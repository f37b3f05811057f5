"""Logging with the request id of the current call (a ``contextvars`` value set by the interceptors)."""

from __future__ import annotations

import contextvars
import logging

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
"""The server's id of the current call: made at the edge (the gateway), passed on to the services."""
client_request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("client_request_id", default="")
"""The id the caller sent in ``x-request-id`` (bounded, printable), kept beside the server's; '' when none."""

REQUEST_ID_HEADER = "x-request-id"
CLIENT_REQUEST_ID_HEADER = "x-client-request-id"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
