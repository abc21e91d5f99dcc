"""Short garbage-collector pauses for a window that holds a big fleet.

Why: CPython's full (generation 2) collection walks every object it tracks, in the event loop's
thread. With a fleet's devices, trees and widgets that walk stalled the window for 77 ms in
``ui.bench`` (a demo fleet under pytest; thousands of devices take far longer). What startup or a
big job builds (devices, their trees, the widgets) lives until the user removes it, so
:func:`settle` moves it out of the collector's reach (``gc.freeze``); later collections only walk
what came after. Removing devices calls ``settle(release=True)``: the frozen objects go back first,
so the removed devices' reference cycles are freed (one full collection, at the user's click).
"""

from __future__ import annotations

import gc


def settle(*, release: bool = False) -> int:
    """Collect, then freeze what is left; returns how many objects are now frozen."""
    if release:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
