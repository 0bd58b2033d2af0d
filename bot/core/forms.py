"""Reading a request's form body (URL-encoded or multipart) so that a malformed one is the caller's mistake
— a 400 the caller answers in its own error shape — and never a 500.

aiohttp's ``request.post()`` fails in many ways on a body a client got wrong: ``ValueError`` (multipart
without a boundary, undecodable text), ``LookupError`` (an unknown ``charset``), ``AssertionError`` and
``HttpProcessingError`` (broken part headers).  :func:`read_form` turns each into :class:`MalformedForm`;
a body over the size limit stays aiohttp's ``HTTPRequestEntityTooLarge``.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

FormValue = str | bytes | bytearray | web.FileField
# What aiohttp raises for a form body it cannot parse (UnicodeDecodeError is a ValueError); also what its
# streaming ``request.multipart()`` reader raises.
FORM_ERRORS = (ValueError, LookupError, AssertionError, HttpProcessingError)


class MalformedForm(ValueError):
    """The request's form body cannot be read; the message names the underlying error's type."""


async def read_form(request: web.Request) -> MultiDictProxy[FormValue]:
    try:
        return await request.post()
    except FORM_ERRORS as exc:
        raise MalformedForm(f"malformed request body ({type(exc).__name__})") from None
