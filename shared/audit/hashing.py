"""An audit event's hash: plain functions of its content (the migrations use them too).

`row_hash` is the SHA-256 of the canonical JSON (keys sorted, no spaces) of the event's
time (UTC, ISO 8601 with microseconds), actor, action, object type and id, details and
`prev_hash`, the `row_hash` of the event before it (`GENESIS` for the first).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
FIELDS = ("at", "actor", "action", "object_type", "object_id", "details")


def plain_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The details as the database gives them back (JSON's types, string keys), so that
    the hash computed before the INSERT is the one computed from the row read later."""
    return json.loads(json.dumps(details or {})) if details else {}


def content_hash(row: Mapping[Any, Any], prev_hash: str) -> str:
    """The hash of an event's content and its link (`row` holds the event's columns)."""
    at = row["at"]
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ValueError("an audit event's time must be an aware datetime")
    content = {field: row[field] for field in FIELDS}
    content["at"] = at.astimezone(UTC).isoformat(timespec="microseconds")
    content["prev_hash"] = prev_hash
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def link(rows: Iterable[dict[str, Any]], prev_hash: str) -> Iterator[dict[str, Any]]:
    """The rows, in order, each with its `prev_hash` and `row_hash` after `prev_hash`
    (for bulk loaders too: their details must already be `plain_details`)."""
    for row in rows:
        row_hash = content_hash(row, prev_hash)
        yield {**row, "prev_hash": prev_hash, "row_hash": row_hash}
        prev_hash = row_hash
