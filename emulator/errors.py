"""Typed errors for everything that enters from outside (a server, a file, a user).

Each error carries the DM status code a session should answer with, so the edge that catches it
never has to guess, and a message that says what and where.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Base of every error the emulator raises on purpose."""

    status: int = 500

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class DecodeError(EmulatorError):
    """A message, document or file could not be decoded (malformed XML, WBXML, JSON, binary)."""

    status = 400


class TooLargeError(DecodeError):
    """Input over a size limit (MaxMsgSize, MaxObjSize, an entity expansion)."""

    status = 413


class UnsupportedError(EmulatorError):
    """A command, media type or feature the device does not support."""

    status = 406


class FileFormatError(EmulatorError):
    """A profile, scenario, DDF or TNDS file is wrong: says which file, which line and why."""

    status = 400

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class SessionError(EmulatorError):
    """A management session cannot go on (transport failure, protocol violation, auth failure)."""

    status = 500


class StoreError(EmulatorError):
    """The workspace file cannot be opened, migrated or written."""

    status = 500
