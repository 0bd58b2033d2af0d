"""The one reader of environment variables.

Every package declares its settings as a frozen dataclass with ``from_env(env)``, and reads each variable
through an :class:`Env`: typed (``text``, ``integer``, ``number``, ``flag``, ``choice``, ``secret``), blank
means "use the default", and a malformed value raises :class:`ConfigError` naming the variable.  An
``Env`` remembers the names it was asked for, which is how a test checks that README's table lists
exactly the variables the code reads.

Secrets are :class:`Secret` values: they never appear in ``repr``, ``str``, logs or tracebacks, and
compare in constant time.  Their defaults are always empty: demo values exist only in ``.env.example``,
which is read only in demo mode (see :mod:`bot.core.config`).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T", int, float)
_TRUE = frozenset({"1", "on", "true", "yes"})
_FALSE = frozenset({"0", "off", "false", "no"})


class ConfigError(ValueError):
    """A variable has a value the system cannot run with."""


class Secret:
    """A secret string: ``get_secret_value()`` gives it; nothing else shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


class Env:
    """A typed view of one environment mapping (``os.environ`` by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.names: set[str] = set()

    @classmethod
    def of(cls, env: Mapping[str, str] | Env | None) -> Env:
        return env if isinstance(env, Env) else cls(env)

    def raw(self, name: str) -> str | None:
        """The value as set (None when unset or blank)."""
        self.names.add(name)
        value = self._environ.get(name)
        return value.strip() if value is not None and value.strip() else None

    def given(self, name: str) -> str | None:
        """The value as set, blank included (None only when unset): for a variable whose empty value
        means something (``SMS_SIGNATURE=`` switches the signature off)."""
        self.names.add(name)
        value = self._environ.get(name)
        return value.strip() if value is not None else None

    def text(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value is None else value

    def _number(self, kind: type[T], name: str, default: T, minimum: T | None) -> T:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, not {raw!r}")
        return value

    def integer(self, name: str, default: int, minimum: int | None = None) -> int:
        return self._number(int, name, default, minimum)

    def number(self, name: str, default: float, minimum: float | None = None) -> float:
        return self._number(float, name, default, minimum)

    def flag(self, name: str, default: bool) -> bool:
        raw = self.raw(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(f"{name} must be on or off, not {raw!r}")

    def choice(self, name: str, default: str, options: Iterable[str]) -> str:
        value = self.text(name, default).lower()
        allowed = sorted(options)
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        return value

    def secret(self, name: str) -> Secret:
        return Secret(self.text(name))
