"""The secret key: what makes one unfit for production, and the random one `make run` keeps in
var/secret_key (made once per checkout, reused after, readable by its owner only).

Everything signed with it (recipient tokens, sessions, the admin's CSRF and password-reset
tokens) can be forged by whoever knows it, so a key that has ever been published (a default in
a settings file, a compose file, a README) is as good as none.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# Django's own rule (django.core.checks.security.base): shorter or less varied keys are weak,
# and `startproject` marks the key it writes with this prefix.
MIN_LENGTH = 50
MIN_UNIQUE_CHARACTERS = 5
INSECURE_PREFIX = "django-insecure-"
# Keys this project has shipped as defaults at one time or another: published, so never secret.
KNOWN_DEFAULTS = frozenset(
    {
        "change-me",
        "changeme",
        "dev-insecure-change-me",
        "build",
        "bench-secret-key-not-for-production",
    }
)


def secret_key_problem(value: object) -> str | None:
    """Why `value` cannot be a production secret key, or None when it can."""
    if not isinstance(value, str) or not value:
        return "is not set"
    if value in KNOWN_DEFAULTS or "change-me" in value.lower():
        return "is a published default"
    if value.startswith(INSECURE_PREFIX):
        return f"starts with {INSECURE_PREFIX!r} (a key generated for development)"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    if len(set(value)) < MIN_UNIQUE_CHARACTERS:
        return f"has fewer than {MIN_UNIQUE_CHARACTERS} different characters"
    return None


def secret_key_file(path: Path) -> str:
    """The key stored at `path`; made (random, mode 0600) if there is none yet.

    Written to a private temporary file and linked into place, so that processes starting at
    the same moment all end up with the one key that won, never with a half-written one."""
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(64)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process made it first: use theirs
            winner = path.read_text().strip()
            if winner:
                return winner
            os.replace(temporary, path)  # an empty file holds no key: replace it
    finally:
        temporary.unlink(missing_ok=True)
    return key
