"""The workspace: devices, their trees, their sessions and their traffic in one SQLite file.

``Workspace.open(DIR)`` is the way in; see :mod:`emulator.store.workspace` for what it promises
(transactions that survive a kill, migrations of older files, one owner at a time).
"""

from emulator.store.records import DeviceRecord, SessionRecord, TrafficRecord
from emulator.store.schema import MIGRATIONS, SCHEMA_VERSION
from emulator.store.workspace import FILE_NAME, Workspace, workspace_file

__all__ = [
    "FILE_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "DeviceRecord",
    "SessionRecord",
    "TrafficRecord",
    "Workspace",
    "workspace_file",
]
