"""NDIF's own API app with authentication on, against an in-memory key table instead of Postgres.

Run as ``uvicorn iw_ndif_auth:app``. ``ndif.services.api.auth`` is used unchanged (its policy: a
missing key is 401, a malformed one 400, an unknown one 403); only the database read
(``PostgresProvider.fetch``) is replaced, by a lookup in ``IW_NDIF_KEYS`` (comma-separated UUIDs).
"""

from __future__ import annotations

import os
from typing import Any

from ndif.common.providers.postgres import PostgresProvider
from ndif.services.api.app import app

_KEYS = {k.strip() for k in os.environ.get("IW_NDIF_KEYS", "").split(",") if k.strip()}


async def _fetch(cls: Any, query: str, key_id: Any) -> list[dict[str, Any]]:
    if str(key_id) not in _KEYS:
        return []
    return [{"user_id": "00000000-0000-0000-0000-000000000001", "email": "test@example.org", "user_tag": None}]


PostgresProvider.enabled = classmethod(lambda cls: True)  # type: ignore[method-assign,assignment]
PostgresProvider.fetch = classmethod(_fetch)  # type: ignore[method-assign,assignment]

__all__ = ["app"]
