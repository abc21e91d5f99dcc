"""The failure of a tree operation, carrying the DM status code the command answers with."""

from __future__ import annotations

from emulator.errors import EmulatorError


class TreeError(EmulatorError):
    """A tree operation refused or failed; ``status`` is the DM status code (404, 405, 418, 425 ...)."""

    def __init__(self, status: int, message: str, *, uri: str = "") -> None:
        super().__init__(message, status=status)
        self.uri = uri
