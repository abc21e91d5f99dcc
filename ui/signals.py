"""Emitting Qt signals from Python safely on PySide6 6.12.

Why this exists: in PySide6 6.12 ``SignalInstance.emit()`` returns ``True`` without owning a
reference to it, so every emit from Python takes one reference away from ``True``. On Python 3.11
(where ``True`` is not immortal) the process aborts with "bool_dealloc: deallocating True" after a
few hundred emits, e.g. half a minute of batched updates. Checked once at import: when the bug is
present the lost reference is given back; a fixed PySide6 (or Python >= 3.12) costs nothing.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance


class _Probe(QObject):
    ping = Signal()


def _emit_loses_a_reference() -> bool:
    if sys.version_info >= (3, 12):
        return False  # True is immortal: nothing to lose
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(4):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost >= 4:
        for _ in range(lost):
            _incref(True)
        return True
    return False


_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None
BUGGY_EMIT = _emit_loses_a_reference()


def emit(signal: SignalInstance, *args: object) -> None:
    """``signal.emit(*args)``, giving back the reference PySide6 6.12 takes from the result."""
    result = signal.emit(*args)  # type: ignore[func-returns-value]  # the stub says None; emit returns a bool
    if BUGGY_EMIT and isinstance(result, bool):
        _incref(result)


# The same bug, wider: on PySide6 6.12 with Python 3.11 every call that returns None to Python (any
# void method: QTimer.start, QLabel.setText, processEvents, a QModelIndex.data() with no value ...)
# takes one reference away from None, and the process aborts with "deallocating None" once None's
# few thousand references are used up: a window under load died within seconds (ui.bench). Wrapping
# every call is impossible, so when the loss is seen, None is made practically immortal, as Python
# 3.12 does for it: its reference count is raised by 2**40 (the count is the first field of every
# object in a release build of 3.11; checked against sys.getrefcount before writing).
_PIN = 1 << 40


def _void_call_loses_none() -> bool:
    if sys.version_info >= (3, 12):
        return False  # None is immortal
    probe = _Probe()
    before = sys.getrefcount(None)
    for _ in range(8):
        probe.setObjectName("probe")
    return before - sys.getrefcount(None) >= 8


def _pin(obj: object) -> bool:
    """Raise ``obj``'s reference count by 2**40; False when the layout is not the expected one."""
    field = ctypes.c_ssize_t.from_address(id(obj))
    if field.value != sys.getrefcount(obj) - 1:  # getrefcount holds one reference of its own
        return False
    field.value += _PIN
    return True


VOID_LOSES_NONE = _void_call_loses_none()
NONE_PINNED = _pin(None) if VOID_LOSES_NONE else False
