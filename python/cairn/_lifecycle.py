"""Closes the checkpointers and managers still open when the interpreter exits.

A save still running at exit would otherwise be waited for during interpreter finalization, when cairn's background
thread can no longer take the GIL to call a Python callback (or a best_fn): the process would abort. atexit runs
before finalization, so closing here lets the save finish (or fail) normally.
"""

from __future__ import annotations

import atexit
import sys
import weakref

_open: "weakref.WeakSet" = weakref.WeakSet()


def track(obj) -> None:
    _open.add(obj)


def _close_all() -> None:
    for obj in list(_open):
        try:
            obj.close()
        except Exception as e:  # at exit there is no caller left to raise to
            print(f"cairn: closing {type(obj).__name__} at exit: {type(e).__name__}: {e}", file=sys.stderr)


atexit.register(_close_all)
