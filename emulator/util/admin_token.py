"""The reference server's admin token as both ends see it: the server (``emulator.server.access``)
asks for it, the scenario runner's ``notify`` events send it. Kept here so the runner, which drives
devices, needs nothing from the server package."""

from __future__ import annotations

import os
import secrets

ADMIN_TOKEN_ENV = "DM_EMULATOR_ADMIN_TOKEN"
"""Environment variable with the admin token (read by ``dm-emulator server`` and ``dm-emulator run``)."""


def new_admin_token() -> str:
    """The token ``/admin`` asks for: ``DM_EMULATOR_ADMIN_TOKEN`` when set, else 128 fresh random bits."""
    return os.environ.get(ADMIN_TOKEN_ENV) or secrets.token_urlsafe(16)


def admin_headers(token: str | None) -> dict[str, str]:
    """The header a client of the admin API sends (none without a token)."""
    return {"Authorization": f"Bearer {token}"} if token else {}
