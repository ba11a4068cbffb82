#!/usr/bin/python3
"""cairn's Python module in `make bench`: how long `AsyncCheckpointer.save()` blocks a Python caller.

Issue 7 asks that an async save's blocking time from Python be no more than the C++ one plus the copy. This
loads the state cairn_bench left in <dump>/ (the same bytes as every other row) as numpy arrays, then measures,
best of --reps each: one copy of every array (numpy, what the module does before save() returns: a numpy
array's buffer can be written again after the call, so it is copied) and the time `ocp.AsyncCheckpointer.save`
blocks. bench/run.py compares the second with cairn_bench's C++ async save (owned arrays) plus the first.

    PYTHONPATH=build-bench/python /usr/bin/python3 bench/python_async.py --dump DIR/floor --dir DIR --json out.json
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import load_state  # noqa: E402  (same directory; the dump's reader)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    try:
        import cairn as ocp
    except ImportError as e:
        with open(args.json, "w") as f:
            json.dump({"unavailable": f"import cairn failed: {e}"}, f)
        return

    _manifest, flat = load_state(args.dump)
    state = {}
    for name, (dtype, arr) in flat.items():
        value = arr.view(ocp.bfloat16) if dtype == "bfloat16" else arr
        node = state
        keys = name.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    nbytes = sum(arr.nbytes for _d, arr in flat.values())

    copies = []
    for _ in range(args.reps):
        a = time.perf_counter()
        held = [np.array(arr, copy=True) for _d, arr in flat.values()]
        copies.append(time.perf_counter() - a)
        del held

    path = os.path.join(args.dir, "python_async")
    blocked, committed = [], []
    with ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler()) as ckptr:
        for _ in range(args.reps):
            shutil.rmtree(path, ignore_errors=True)
            os.sync()
            a = time.perf_counter()
            ckptr.save(path, args=ocp.args.StandardSave(state))
            b = time.perf_counter()
            ckptr.wait_until_finished()
            c = time.perf_counter()
            blocked.append(b - a)
            committed.append(c - a)
    shutil.rmtree(path, ignore_errors=True)
    out = {"bytes": nbytes, "copy_seconds": copies, "copy_best_seconds": min(copies),
           "blocked_seconds": blocked, "blocked_best_seconds": min(blocked), "first_blocked_seconds": blocked[0],
           "commit_seconds": committed}
    print(f"[python_async] copy {min(copies) * 1e3:.1f} ms, save() blocked {min(blocked) * 1e3:.1f} ms "
          f"(first {blocked[0] * 1e3:.1f} ms)", file=sys.stderr)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
