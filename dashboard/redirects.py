"""Return addresses (`back`, `next`, ...) that can only lead back into this site.

Every address a form or a query string asks us to return to goes through `local_path`
before it reaches a `Location` header or a link. Browsers are lenient where a check is
strict: they drop tabs and newlines anywhere in a URL, read a backslash as a slash and
decode percent escapes, so `/%09/evil.example` or `/\\evil.example` is another site to
them. The check therefore looks at the address after decoding it (repeatedly, so double
encoding doesn't hide a slash) and refuses any control or invisible character, any
backslash, and anything that has a scheme or a host.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

# Enough rounds to see through any encoding we produce or a browser undoes.
_DECODE_ROUNDS = 4
# Control, format (e.g. the right-to-left override), unassigned, private use, surrogates,
# line and paragraph separators: none belongs in a local path.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"})


def _decoded(value: str) -> str:
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(value)
        if decoded == value:
            break
        value = decoded
    return value


def is_local_path(target: str) -> bool:
    """True when `target` is an absolute path on this site and nothing else."""
    for form in (target, _decoded(target)):
        if not form.startswith("/") or form.startswith("//"):
            return False
        if "\\" in form or any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in form):
            return False
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return False
    return True


def local_path(target: str, default: str = "/") -> str:
    """`target` when it is a path on this site, else `default` (never another site)."""
    return target if is_local_path(target) else default
