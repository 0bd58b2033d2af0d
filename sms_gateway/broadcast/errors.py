"""The one error of the broadcast service and its helpers (``service.py``, ``audience.py``): a refused
operation, with a Chinese message for staff and the HTTP status the API answers it with."""

from __future__ import annotations


class BroadcastError(Exception):
    """A refused operation (message in Chinese, for staff).  ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
