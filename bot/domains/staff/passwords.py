"""Password rules and hashing.

Rules (OWASP ASVS 4.0.3 V2.1 with the 等保 2.0 complexity requirement): 12 to 128 characters, nothing
truncated; at least two kinds of character (letters, digits, symbols); not built on the username; and not
guessable — zxcvbn (its frequency lists of leaked passwords, names and keyboard patterns) must rate it at
least 3 of 4.  Hashes are argon2id (argon2-cffi's RFC 9106 low-memory profile: t=3, 64 MiB, p=4, above
OWASP's minimum); hashing runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_SCORE = 3

_hasher = PasswordHasher()
# A real hash to verify against when the username is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


class WeakPassword(ValueError):
    """The password breaks a rule; the message says which, in Chinese."""


def _kinds(password: str) -> int:
    letters = any(c.isalpha() for c in password)
    digits = any(c.isdigit() for c in password)
    symbols = any(not c.isalnum() for c in password)
    return letters + digits + symbols


def check_password(password: str, username: str = "", display_name: str = "") -> str:
    """The password (NFKC-normalised) when it meets the rules; else :class:`WeakPassword`."""
    text = unicodedata.normalize("NFKC", password)
    if len(text) < MIN_LENGTH:
        raise WeakPassword(f"密码至少 {MIN_LENGTH} 个字符")
    if len(text) > MAX_LENGTH:
        raise WeakPassword(f"密码最多 {MAX_LENGTH} 个字符")
    if _kinds(text) < 2:
        raise WeakPassword("密码须包含字母、数字、符号中的至少两类")
    if username and username.lower() in text.lower():
        raise WeakPassword("密码不能包含用户名")
    hints = [h for h in (username, display_name) if h]
    from zxcvbn import zxcvbn  # 13 MB of word lists: loaded when a password is set, not by every process

    if zxcvbn(text[:100], user_inputs=hints)["score"] < MIN_SCORE:
        raise WeakPassword("密码太常见或太容易猜到，请换一个更长、更随机的密码（可用几个词组成的短语）")
    return text


async def hash_password(password: str) -> str:
    text = unicodedata.normalize("NFKC", password)
    return await asyncio.to_thread(_hasher.hash, text)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-cost check; ``stored_hash=None`` (unknown user) verifies against a dummy hash."""
    text = unicodedata.normalize("NFKC", password)[: MAX_LENGTH * 4]

    def verify() -> bool:
        try:
            return _hasher.verify(stored_hash or _DUMMY_HASH, text) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
