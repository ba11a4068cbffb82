#!/usr/bin/python3
"""`make bench`: cairn against the physical floors and its peers, in one run, on the same bytes.

Runs the already-built cairn_bench (floors and cairn), bench/peers.py (torch, numpy, zarr, zarr+zstd, h5py) and
bench/orbax_peer.py (the real Orbax, and cairn's Python module beside it, in the interop environment),
computes every target of issue 4 as a ratio of numbers from this run, then runs cairn_bench_mp under mpirun with
1, 2 and 4 processes (the multi-process rows: aggregate save and restore throughput of one global state against
this run's single-process floors), runs cairn_delta_bench (delta checkpoints, issue 18: a fine-tuning-shaped run of a
frozen base plus a changing adapter, and a run where everything changes, against full saves), prints a table and
writes bench/results/latest.json and bench/results/latest.png. It builds nothing: `make bench` builds, then runs it.

    make bench                                   # 2 GiB state
    make bench BENCH_ARGS="--quick"              # 256 MiB, for trying things
    make bench BENCH_ARGS="--size-gib 1 --layers 12 --mix f32"
    make bench BENCH_ARGS="--only-delta --delta-base-mib 64 --delta-adapter-mib 1"   # the delta rows, small
    /usr/bin/python3 bench/run.py --help
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GIB = 1024.0 ** 3
MIB = 1024.0 ** 2
MEMORY_FILESYSTEMS = {"tmpfs", "ramfs"}


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def fs_type(path):
    """The file system type of path (or of its nearest existing parent), as `stat -f -c %T` names it."""
    p = os.path.abspath(path)
    while not os.path.exists(p):
        p = os.path.dirname(p)
    try:
        return subprocess.run(["stat", "-f", "-c", "%T", p], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            text = f.read()
        return text[text.index("[") + 1:text.index("]")]
    except (OSError, ValueError):
        return "unknown"


def device_of(path):
    p = os.path.abspath(path)
    while not os.path.exists(p):
        p = os.path.dirname(p)
    return os.stat(p).st_dev


# -------------------------------------------------------------------------------------------------------------
# Targets


def best(m):
    return m.get("best_seconds") if isinstance(m, dict) else None


def rate(m):
    return m.get("gib_per_s") if isinstance(m, dict) else None


class Target:
    def __init__(self, name, measured, reference, ratio, need, op, detail, note=""):
        self.name, self.measured, self.reference = name, measured, reference
        self.ratio, self.need, self.op, self.detail, self.note = ratio, need, op, detail, note

    @property
    def status(self):
        if self.ratio is None:
            return "n/a"
        ok = self.ratio >= self.need if self.op == ">=" else (self.ratio <= self.need if self.op == "<=" else
                                                               self.ratio < self.need)
        return "pass" if ok else "MISS"

    def to_json(self):
        return {"target": self.name, "measured": self.measured, "reference": self.reference, "ratio": self.ratio,
                "required": f"{self.op} {self.need}", "status": self.status, "detail": self.detail,
                "note": self.note}


def compute_targets(c, p):
    """c: cairn_bench's JSON; p: peers.py's JSON (or None)."""
    t = []
    state = c["state"]["bytes"]
    floors = c.get("floors", {})
    cairn = c.get("cairn", {})
    asy = cairn.get("async", {})
    peers = (p or {}).get("peers", {})

    def ratio(a, b):
        return a / b if a is not None and b not in (None, 0) else None

    # 1. durable uncompressed save >= 0.9 x write+fsync
    save, floor = rate(cairn.get("save_raw")), rate(floors.get("write_fsync"))
    t.append(Target("durable uncompressed save >= 0.9 x write+fsync floor", save, floor, ratio(save, floor), 0.9,
                    ">=", f"{fmt(save)} vs {fmt(floor)} GiB/s"))

    # 2. async save blocking, owned arrays, staging (the fallback where copy-on-write is unavailable) <= 1.25 x memcpy
    owned = asy.get("owned_staging", asy.get("owned", {})) if isinstance(asy, dict) else {}
    blocked, memcpy = best(owned.get("blocked")), best(floors.get("memcpy"))
    first = owned.get("first_blocked_seconds")
    t.append(Target("async save blocked, owned arrays, staging <= 1.25 x memcpy", blocked, memcpy,
                    ratio(blocked, memcpy),
                    1.25, "<=", f"{ms(blocked)} vs memcpy {ms(memcpy)}",
                    f"steady state (best of reps, staging pool reused); first save {ms(first)}" if first else
                    asy.get("unavailable", "") if isinstance(asy, dict) else ""))

    # 3. async save blocking, shared immutable arrays < 10 ms (at 2 GiB)
    shared = asy.get("shared", {}) if isinstance(asy, dict) else {}
    sb = best(shared.get("blocked"))
    sfirst = shared.get("first_blocked_seconds")
    size_note = f"state {state / GIB:.2f} GiB" + ("" if abs(state / GIB - 2) < 0.05 else " (the target is set at 2 GiB)")
    t.append(Target("async save blocked, shared arrays < 10 ms", sb, 0.010, ratio(sb, 0.010), 1.0, "<",
                    f"{ms(sb)} vs 10 ms", size_note + (f"; first save {ms(sfirst)}" if sfirst else "")))

    # 3b. issue 7: an async save from Python blocks no longer than the C++ one plus the copy
    pya = c.get("python_async", {})
    py_blocked = pya.get("blocked_best_seconds")
    py_ref = blocked + pya["copy_best_seconds"] if blocked is not None and "copy_best_seconds" in pya else None
    t.append(Target("Python async save blocked <= C++ blocked + one copy", py_blocked, py_ref,
                    ratio(py_blocked, py_ref), 1.0, "<=",
                    f"{ms(py_blocked)} vs {ms(blocked)} + copy {ms(pya.get('copy_best_seconds'))}",
                    pya.get("unavailable", f"first save {ms(pya.get('first_blocked_seconds'))}")))

    # 4. warm restore >= fastest peer's load
    warm = rate(cairn.get("restore_warm"))
    loads = {k: rate(v.get("load_warm")) for k, v in peers.items() if isinstance(v, dict) and rate(v.get("load_warm"))}
    fastest = max(loads, key=loads.get) if loads else None
    t.append(Target("warm restore >= fastest peer's warm load", warm, loads.get(fastest), ratio(warm, loads.get(fastest)),
                    1.0, ">=", f"{fmt(warm)} vs {fastest} {fmt(loads.get(fastest))} GiB/s" if fastest else
                    "no peer measured"))

    # 4b. integrity: verifying every chunk's CRC-32C costs < 10% of a warm restore (issue 8)
    unv = best(cairn.get("restore_warm_unverified"))
    ver = best(cairn.get("restore_warm"))
    t.append(Target("checksum verification < 10% of warm restore time", ver, unv, ratio(ver, unv), 1.10, "<=",
                    f"{ms(ver)} verified vs {ms(unv)} not", "best of reps each; the ratio is verified / unverified"))

    # 5. cold restore >= 0.9 x sequential read (cold)
    cold, rcold = cairn.get("restore_cold", {}), floors.get("read_cold", {})
    note = cold.get("unavailable") or rcold.get("unavailable") or ""
    t.append(Target("cold restore >= 0.9 x cold sequential-read floor", rate(cold), rate(rcold),
                    ratio(rate(cold), rate(rcold)), 0.9, ">=", f"{fmt(rate(cold))} vs {fmt(rate(rcold))} GiB/s",
                    ("cold reads unavailable: " + note) if note else "page cache dropped before each cold read"))

    # 6. zstd save >= 2 x zarr-python + zstd level 1
    z, zp = rate(cairn.get("save_zstd")), rate(peers.get("zarr_zstd1", {}).get("save"))
    t.append(Target("zstd save >= 2 x zarr-python + zstd level 1", z, zp, ratio(z, zp), 2.0, ">=",
                    f"{fmt(z)} vs {fmt(zp)} GiB/s"))

    # 7. peak RSS of an async save, owned: growth <= 1.1 x state + 256 MiB
    rss = owned.get("rss", {})
    grow = rss.get("peak_rss_above_start_bytes")
    limit = 1.1 * state + 256 * MIB
    t.append(Target("peak RSS async save, owned, staging: <= 1.1 x state + 256 MiB", grow, limit, ratio(grow, limit),
                    1.0,
                    "<=", f"{plus_mib(grow)} vs {mib(limit)}",
                    "growth: RSS added by the save (staging copy included) above the RSS before it, which holds the state;"
                    f" peak {mib(rss.get('peak_rss_bytes'))} in all"))

    # 8. peak RSS of an async save, shared: <= 256 MiB above the state
    rss = shared.get("rss", {})
    peak = rss.get("peak_rss_bytes")
    above = peak - state if peak is not None else None
    t.append(Target("peak RSS async save, shared: <= state + 256 MiB", above, 256 * MIB, ratio(above, 256 * MIB),
                    1.0, "<=", f"{plus_mib(above)} vs {mib(256 * MIB)}",
                    f"process peak RSS {mib(peak)} minus the state {mib(state)}; the save itself added"
                    f" {mib(rss.get('peak_rss_above_start_bytes'))}"))
    t += issue15_targets(c, ratio)
    t += copy_on_write_targets(c, ratio)
    t += orbax_targets(c.get("orbax_peer", {}))
    return t


def issue15_targets(c, ratio):
    """Issue 15: restores at the floor, compression that costs no more than it saves, bounded memory."""
    t = []
    state = c["state"]["bytes"]
    floors, cairn = c.get("floors", {}), c.get("cairn", {})
    warm, fwarm = rate(cairn.get("restore_warm")), rate(floors.get("read_warm"))
    # The floor reads into memory it already has; a restore that returns new arrays gets fresh pages, which the
    # kernel zeroes first: the note gives the same read into fresh pages, the floor of that.
    fresh_read = rate(floors.get("read_warm_fresh_pages"))
    t.append(Target("warm restore, uncompressed >= 0.8 x warm read floor", warm, fwarm, ratio(warm, fwarm), 0.8,
                    ">=", f"{fmt(warm)} vs {fmt(fwarm)} GiB/s",
                    f"read into fresh pages (one thread): {fmt(fresh_read)} GiB/s" if fresh_read else ""))
    cold, rcold = cairn.get("restore_cold", {}), floors.get("read_cold", {})
    t.append(Target("cold restore >= 0.95 x cold read floor", rate(cold), rate(rcold),
                    ratio(rate(cold), rate(rcold)), 0.95, ">=", f"{fmt(rate(cold))} vs {fmt(rate(rcold))} GiB/s",
                    cold.get("unavailable") or rcold.get("unavailable") or ""))
    # cairn's RestoreArgs (bench/cairn_bench.cc, RestoreWithArgs): into the caller's own (already touched) arrays,
    # and lazily over mappings of the files, with every page then read (each block checked on access, or all
    # blocks up front); the lazy restore alone should cost next to nothing.
    # A region paged on access gets its pages one 4 KiB page at a time from the kernel (UFFDIO_COPY), never huge
    # pages: the note gives memcpy into fresh 4 KiB pages, the floor of that, beside the target's floor.
    fresh = rate(floors.get("memcpy_first_touch"))
    for key, what in (("restore_warm_fill", "restore into own arrays (fill_target)"),
                      ("restore_warm_lazy_touch", "lazy restore + reading every page (checked on access)"),
                      ("restore_warm_lazy_up_front_touch", "lazy restore, checked up front, + reading every page")):
        r = rate(cairn.get(key))
        note = (f"memcpy into fresh 4 KiB pages (one thread): {fmt(fresh)} GiB/s"
                if key == "restore_warm_lazy_touch" and fresh else "")
        t.append(Target(f"warm {what} >= 0.8 x warm read floor", r, fwarm, ratio(r, fwarm), 0.8, ">=",
                        f"{fmt(r)} vs {fmt(fwarm)} GiB/s", note))
    lazy, eager = best(cairn.get("restore_warm_lazy")), best(cairn.get("restore_warm"))
    t.append(Target("lazy restore (mapping only) <= 0.1 x eager warm restore time", lazy, eager, ratio(lazy, eager),
                    0.1, "<=", f"{ms(lazy)} vs {ms(eager)}"))
    # The default compressed save against the uncompressed one: adaptive zstd stores what does not pay in raw
    # blocks, so it should cost little more than the bytes it writes.
    z, raw = rate(cairn.get("save_zstd")), rate(cairn.get("save_raw"))
    disk_z = (cairn.get("save_zstd") or {}).get("bytes_on_disk")
    t.append(Target("default (zstd) save >= 0.5 x uncompressed save", z, raw, ratio(z, raw), 0.5, ">=",
                    f"{fmt(z)} vs {fmt(raw)} GiB/s",
                    f"{mib(disk_z)} on disk for a {mib(state)} state" if disk_z else ""))
    rz = rate(cairn.get("restore_zstd_warm"))
    t.append(Target("default (zstd) warm restore >= 0.5 x uncompressed", rz, warm, ratio(rz, warm), 0.5, ">=",
                    f"{fmt(rz)} vs {fmt(warm)} GiB/s"))
    # Memory: peak RSS a restore adds <= the restored bytes + 256 MiB; a save without copy-on-write <= state + 256.
    limit = state + 256 * MIB
    for key, what in (("restore_warm", "restore, uncompressed"), ("restore_zstd_warm", "restore, zstd"),
                      ("save_raw", "sync save, uncompressed"), ("save_zstd", "sync save, zstd")):
        m = cairn.get(key) or {}
        grow = (m.get("rss") or {}).get("peak_rss_above_start_bytes")
        t.append(Target(f"peak extra RSS, {what} <= state + 256 MiB", grow, limit, ratio(grow, limit), 1.0, "<=",
                        f"{plus_mib(grow)} vs {mib(limit)}",
                        "RSS added above the RSS before the operation (which holds the state)"))
    return t


def copy_on_write_targets(c, ratio):
    """Issue 15, part 3: an async save of owned arrays by copy-on-write, the caller writing nothing during the save."""
    t = []
    state = c["state"]["bytes"]
    asy = c.get("cairn", {}).get("async", {})
    cow = asy.get("owned", {}) if isinstance(asy, dict) else {}
    size_note = f"state {state / GIB:.2f} GiB" + ("" if abs(state / GIB - 2) < 0.05 else " (the target is set at 2 GiB)")
    on = "" if cow.get("copy_on_write", True) else " (copy-on-write was off)"
    blocked, first = best(cow.get("blocked")), cow.get("first_blocked_seconds")
    t.append(Target("async save blocked, owned, copy-on-write, later saves < 10 ms", blocked, 0.010,
                    ratio(blocked, 0.010), 1.0, "<", f"{ms(blocked)} vs 10 ms", size_note + on))
    t.append(Target("async save blocked, owned, copy-on-write, first save < 10 ms", first, 0.010,
                    ratio(first, 0.010), 1.0, "<", f"{ms(first)} vs 10 ms", size_note + on))
    grow = (cow.get("rss") or {}).get("peak_rss_above_start_bytes")
    limit = 0.1 * state + 256 * MIB
    t.append(Target("peak extra RSS async save, owned, copy-on-write, no writes <= 0.1 x state + 256 MiB", grow,
                    limit, ratio(grow, limit), 1.0, "<=", f"{plus_mib(grow)} vs {mib(limit)}",
                    "RSS added above the RSS before the saves (which holds the state)" + on))
    return t


def codec_rows(c):
    """One row per (data, codec) of cairn_bench's codecs phase: ratio and one-core rates."""
    out = []
    for r in c.get("codecs", []) or []:
        default = " (cairn's default)" if r["codec"] == "zstd-1 adaptive" else ""
        out.append(("codec", f"{r['codec']}: {r['data']}", r["encode_seconds"], r["encode_gib_per_s"],
                    f"stored {r['ratio'] * 100:.1f}%, decode {fmt(r['decode_gib_per_s'])} GiB/s (one core; "
                    f"{r['bytes'] / MIB:.0f} MiB){default}"))
    return out


def orbax_targets(runs):
    """Issue 12's targets against the real Orbax, measured by bench/orbax_peer.py on the same state: cairn's Python
    module against Orbax, both on Orbax's defaults (OCDBT, zstd), with numpy, jax CPU arrays and a state sharded
    over 8 virtual devices (restored onto its shardings) as inputs."""
    t = []
    for inputs in ORBAX_PEER_INPUTS:
        o, k = runs.get(f"orbax/{inputs}", {}), runs.get(f"cairn/{inputs}", {})
        why = o.get("unavailable") or k.get("unavailable") or ""

        def ratio(a, b):
            return a / b if a is not None and b not in (None, 0) else None

        for key, name, need, op, faster in (("save_durable", "durable save", 2.0, ">=", True),
                                            ("restore_warm", "restore with targets, warm", 2.0, ">=", True),
                                            ("restore_cold", "restore with targets, cold", 2.0, ">=", True),
                                            ("async_blocked", "async save blocked", 0.5, "<=", False)):
            a, b = best(k.get(key)), best(o.get(key))
            # Throughput ratios for the first three (cairn / Orbax GiB/s = Orbax s / cairn s), time for blocking.
            r = ratio(b, a) if faster else ratio(a, b)
            t.append(Target(f"{name} vs Orbax, {inputs} {'>= 2x' if faster else '<= 0.5x'}", a, b, r, need, op,
                            f"cairn {ms(a)} vs Orbax {ms(b)}", why))
        a, b = k.get("peak_rss_above_state_bytes"), o.get("peak_rss_above_state_bytes")
        t.append(Target(f"peak RSS above the state vs Orbax, {inputs} <= 1x", a, b, ratio(a, b), 1.0, "<=",
                        f"cairn {plus_mib(a)} vs Orbax {plus_mib(b)}", why or "process peak RSS minus the RSS "
                        "holding the state; each library in its own process"))
    return t


ORBAX_PEER_INPUTS = ("numpy", "jax", "jax-sharded")


def run_orbax_peer(args, work, dump, cold):
    """bench/orbax_peer.py for Orbax and cairn's module, numpy and jax inputs, each in its own process, with the
    interop environment's Python (the real Orbax)."""
    venv = subprocess.run(["bash", os.path.join(ROOT, "scripts", "install-deps.sh"), "--print-venv"],
                          capture_output=True, text=True, check=True).stdout.strip()
    python = os.path.join(venv, "bin", "python")
    py_pkg = os.path.join(args.build_dir, "python")
    if not os.path.exists(python):
        return {"unavailable": f"no interop environment at {venv} (scripts/install-deps.sh)"}
    runs = {}
    for inputs in ORBAX_PEER_INPUTS:
        for lib in ("orbax", "cairn"):
            out = os.path.join(work, f"orbax_peer_{lib}_{inputs}.json")
            cmd = [python, os.path.join(HERE, "orbax_peer.py"), "--lib", lib, "--inputs", inputs, "--dump", dump,
                   "--dir", work, "--json", out, "--reps", str(min(args.reps, 2))] + ([] if cold else ["--no-cold"])
            log(" ".join(cmd))
            subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=py_pkg))
            with open(out) as f:
                runs[f"{lib}/{inputs}"] = json.load(f)
    return runs


# -------------------------------------------------------------------------------------------------------------
# Multi-process: cairn_bench_mp under mpirun

# As the tests run it (tests/CMakeLists.txt): root allowed, more processes than cores allowed, shared memory
# without CMA. --bind-to none: Open MPI would otherwise pin each process of a small job to one core, so that one
# process would save on one core where the single-process bench uses them all.
MPIRUN_FLAGS = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader",
                "--mca", "btl_vader_single_copy_mechanism", "none"]


def run_multi_process(args, work, size_gib, cold):
    """Runs cairn_bench_mp with each process count; returns what goes under "multi_process" in latest.json."""
    counts = [int(x) for x in args.mp_procs.split(",") if x.strip()]
    if not counts:
        return {"skipped": "--mp-procs is empty"}
    exe = os.path.join(args.build_dir, "bench", "cairn_bench_mp")
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if not os.access(exe, os.X_OK):
        return {"skipped": f"{exe} is not built (cairn was configured without MPI: install libopenmpi-dev, "
                           "see docs/distributed.md)"}
    if not mpirun:
        return {"skipped": "no mpirun or mpiexec on PATH"}
    size_mib = size_gib * 1024
    reps = args.mp_reps or args.reps
    out = {"size_gib": size_gib, "processes": counts, "reps": reps, "zstd": args.mp_zstd,
           "mpirun": [mpirun] + MPIRUN_FLAGS, "runs": {}}
    for n in counts:
        js = os.path.join(work, f"mp_{n}.json")
        cmd = [mpirun] + MPIRUN_FLAGS + ["-n", str(n), exe, "--dir", os.path.join(work, "mp"), "--json", js,
                                         "--size-mib", f"{size_mib:g}", "--reps", str(reps)]
        cmd += (["--zstd"] if args.mp_zstd else []) + ([] if cold else ["--no-cold"])
        log(" ".join(cmd))
        # In a session of its own, so that a run past its limit ends with every process mpirun started.
        proc = subprocess.Popen(cmd, start_new_session=True)
        try:
            rc = proc.wait(timeout=args.mp_timeout_s)
            if rc != 0:
                out["runs"][str(n)] = {"error": f"exit status {rc}"}
        except subprocess.TimeoutExpired:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(timeout=wait)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue
            out["runs"][str(n)] = {"error": f"timed out after {args.mp_timeout_s:g} s"}
        if str(n) not in out["runs"] or os.path.exists(js):
            try:
                with open(js) as f:
                    out["runs"][str(n)] = json.load(f) | out["runs"].get(str(n), {})
            except (OSError, ValueError) as e:
                out["runs"][str(n)] = {"error": f"no result: {e}"}
        shutil.rmtree(os.path.join(work, "mp"), ignore_errors=True)
    return out


MP_COLUMNS = (  # key in cairn_bench_mp's JSON, column header, floor it is compared with
    ("save_raw", "save", "write_fsync"),
    ("restore_warm", "restore warm", "read_warm"),
    ("restore_cold", "restore cold", "read_cold"),
    ("save_zstd", "zstd save", "write_fsync"),
    ("restore_zstd_warm", "zstd restore", "read_warm"),
)


def mp_rows(c, mp):
    """One dict per process count: GiB/s and the ratio to this run's single-process floor, per operation."""
    floors = c.get("floors", {}) if c else {}
    out = []
    checksums = {r.get("state", {}).get("checksum") for r in mp.get("runs", {}).values() if isinstance(r, dict)}
    checksums.discard(None)
    for n in mp.get("processes", []):
        r = mp["runs"].get(str(n), {})
        row = {"processes": n, "error": r.get("error")}
        notes_ = []
        for key, _title, floor in MP_COLUMNS:
            m = r.get(key)
            g = rate(m)
            f = rate(floors.get(floor))
            row[key] = {"gib_per_s": g, "best_seconds": best(m), "floor": floor, "floor_gib_per_s": f,
                        "ratio_to_floor": g / f if g is not None and f else None}
            if isinstance(m, dict) and "unavailable" in m:
                row[key]["unavailable"] = m["unavailable"]
                if key == "restore_cold":
                    notes_.append("cold: " + m["unavailable"])
            if isinstance(m, dict) and m.get("verified") is False:
                notes_.append(f"{key}: BYTES DIFFER ({m.get('verify_error', '')})")
        row["verified"] = all(r.get(k, {}).get("verified", True) for k, _t, _f in MP_COLUMNS
                              if isinstance(r.get(k), dict)) if not row["error"] else None
        row["checksum"] = r.get("state", {}).get("checksum")
        if len(checksums) > 1:
            notes_.append("STATE DIFFERS between process counts")
        if row["error"]:
            notes_.append("failed: " + row["error"])
        row["note"] = "; ".join(notes_)
        out.append(row)
    return out


def render_mp(c, mp, rows_):
    if "skipped" in mp:
        return [f"multi-process: skipped: {mp['skipped']}"]
    floors = c.get("floors", {})
    state = next((r["state"] for r in mp["runs"].values() if isinstance(r, dict) and "state" in r), {})
    lines = [
        f"multi-process: {state.get('bytes', mp['size_gib'] * GIB) / GIB:.2f} GiB global state, "
        f"{state.get('arrays', '?')} float32 arrays (d_model {state.get('d_model', '?')}), rows split over n "
        f"processes (NamedSharding x), mpirun on {c['config']['cores']} cores",
        "  aggregate GiB/s = state bytes / wall time of the slowest process (barrier to barrier), best of "
        f"{mp['reps']}; cold: once, after drop_caches" + ("" if mp.get("zstd") else "; zstd not run (--no-mp-zstd)"),
        f"  x floor: ratio to this run's single-process floors at {c['state']['bytes'] / GIB:.2f} GiB: write+fsync "
        f"{fmt(rate(floors.get('write_fsync')))}, read warm {fmt(rate(floors.get('read_warm')))}, read cold "
        f"{fmt(rate(floors.get('read_cold')))} GiB/s",
        "",
        f"{'':5}  " + "  ".join(f"{t:^15}" for _k, t, _f in MP_COLUMNS),
        f"{'procs':>5}  " + "  ".join(f"{'GiB/s':>6} {'x floor':>8}" for _ in MP_COLUMNS) + "  verified",
        "-" * 100,
    ]
    for r in rows_:
        cells = []
        for key, _t, _f in MP_COLUMNS:
            x = r[key]
            cells.append(f"{fmt(x['gib_per_s']):>6} {fmt(x['ratio_to_floor'], 3) if x['ratio_to_floor'] is not None else '-':>8}")
        ver = "-" if r["verified"] is None else ("yes" if r["verified"] else "NO")
        lines.append(f"{r['processes']:>5}  " + "  ".join(cells) + f"  {ver}" + (f"  {r['note']}" if r["note"] else ""))
    return lines


# -------------------------------------------------------------------------------------------------------------
# Formatting


def fmt(v, prec=2):
    return "-" if v is None else f"{v:.{prec}f}"


def ms(s):
    return "-" if s is None else (f"{s * 1e3:.3f} ms" if s < 1 else f"{s * 1e3:.0f} ms")


def mib(b):
    return "-" if b is None else f"{b / MIB:.0f} MiB"


def plus_mib(b):
    return "-" if b is None else f"+{b / MIB:.0f} MiB"


def first_rep(m):
    secs = m.get("seconds") if isinstance(m, dict) else None
    return f"first rep {secs[0]:.4f} s" if secs and len(secs) > 1 else ""


def fewer_reps(m, reps):
    n = len(m.get("seconds", [])) if isinstance(m, dict) else 0
    return f"best of {n} (time budget)" if 0 < n < reps else ""


def notes(*parts):
    return "; ".join(x for x in parts if x)


def rows(c, p):
    """(group, operation, seconds, GiB/s, note) for every measured operation."""
    out = []
    reps = c["config"]["reps"]
    floors, cairn = c.get("floors", {}), c.get("cairn", {})

    def add(group, op, m, note=""):
        if not isinstance(m, dict):
            return
        if "unavailable" in m:
            out.append((group, op, None, None, "unavailable: " + m["unavailable"]))
        elif "best_seconds" in m:
            out.append((group, op, m["best_seconds"], m["gib_per_s"], note))

    add("floor", "memcpy (one thread, pre-faulted)", floors.get("memcpy"))
    add("floor", "memcpy into fresh pages", floors.get("memcpy_first_touch"), "once")
    add("floor", "memcpy into fresh pages, MADV_HUGEPAGE", floors.get("memcpy_first_touch_thp"),
        "once; transparent huge pages: " + thp_mode())
    add("floor", "write + fsync, one file", floors.get("write_fsync"))
    add("floor", "sequential read, warm", floors.get("read_warm"))
    add("floor", "sequential read, warm, into fresh pages", floors.get("read_warm_fresh_pages"),
        "MADV_HUGEPAGE, as restored arrays get; information")
    add("floor", "sequential read, cold", floors.get("read_cold"), "once, after drop_caches")
    add("floor", "sequential read, cold, into fresh pages", floors.get("read_cold_fresh_pages"),
        "once, after drop_caches; information")
    for key, op in (("save_raw", "sync save, uncompressed (durable)"), ("save_zstd", "sync save, zstd-1 adaptive (durable)")):
        m = cairn.get(key)
        if isinstance(m, dict):
            add("cairn", op, m, f"{m.get('bytes_on_disk', 0) / MIB:.0f} MiB on disk, {plus_mib(m['rss']['peak_rss_above_start_bytes'])} RSS"
                if "rss" in m else "")
    asy = cairn.get("async", {})
    if isinstance(asy, dict) and "unavailable" in asy:
        out.append(("cairn", "async save", None, None, "unavailable: " + asy["unavailable"]))
    for kind, name in (("owned", "owned, copy-on-write, no writes"), ("owned_write10", "owned, copy-on-write, 10% of pages written"),
                       ("owned_write_all", "owned, copy-on-write, all pages written"), ("owned_staging", "owned, staging"),
                       ("shared", "shared")):
        m = asy.get(kind) if isinstance(asy, dict) else None
        if isinstance(m, dict):
            add("cairn", f"async save, {name}: save() blocked", m["blocked"],
                f"first save {ms(m.get('first_blocked_seconds'))}")
            if "writes" in m:
                add("cairn", f"async save, {name}: the caller's writes during the save", m["writes"],
                    "one 4-byte store per written page")
            add("cairn", f"async save, {name}: until committed", m["commit"],
                f"peak RSS {plus_mib(m['rss']['peak_rss_above_start_bytes'])} over the state")
    for key, op, note in (("restore_warm", "restore, warm", first_rep(cairn.get("restore_warm"))),
                          ("restore_warm_unverified", "restore, warm, checksums not verified",
                           first_rep(cairn.get("restore_warm_unverified"))),
                          ("restore_cold", "restore, cold", "once, after drop_caches"),
                          ("restore_zstd_warm", "restore zstd, warm", first_rep(cairn.get("restore_zstd_warm")))):
        m = cairn.get(key)
        if isinstance(m, dict) and "rss" in m:
            note = (note + "; " if note else "") + f"{plus_mib(m['rss']['peak_rss_above_start_bytes'])} RSS"
        if isinstance(m, dict) and "verified" in m and not m["verified"]:
            note = (note + "; " if note else "") + "BYTES DIFFER: " + m.get("verify_error", "")
        add("cairn", op, m, note)
    for key, m in c.get("orbax_peer", {}).items():
        if not isinstance(m, dict):
            continue
        lib, inputs = key.split("/")
        group = "Orbax" if lib == "orbax" else "cairn.py"
        bad = "" if m.get("verified", True) else "RESTORED BYTES DIFFER"
        add(group, f"{inputs}: async save, save() blocked", m.get("async_blocked"), m.get("version", ""))
        add(group, f"{inputs}: async save, until committed", m.get("async_commit"))
        add(group, f"{inputs}: sync save (durable)", m.get("save_durable"))
        add(group, f"{inputs}: restore with targets, warm", m.get("restore_warm"), bad)
        add(group, f"{inputs}: restore with targets, cold", m.get("restore_cold"), "once, after drop_caches")
        out.append((group, f"{inputs}: peak RSS", None, None,
                    f"{mib(m.get('peak_rss_bytes'))}, {plus_mib(m.get('peak_rss_above_state_bytes'))} above the state"))
    out += codec_rows(c)
    for name, m in ((p or {}).get("peers", {})).items():
        if "unavailable" in m:
            out.append((name, "-", None, None, "unavailable: " + m["unavailable"]))
            continue
        bad = "" if m.get("verified", True) else "LOADED BYTES DIFFER"
        add(name, "save (durable)", m.get("save"),
            notes(f"{m.get('bytes_on_disk', 0) / MIB:.0f} MiB on disk", fewer_reps(m.get("save"), reps)))
        add(name, "load, warm", m.get("load_warm"),
            notes(first_rep(m.get("load_warm")), fewer_reps(m.get("load_warm"), reps), bad))
        add(name, "load, cold", m.get("load_cold"), "once, after drop_caches")
    return out


def render_table(c, p, targets, mp=None):
    s = c["state"]
    lines = [
        f"cairn bench: {s['bytes'] / GIB:.2f} GiB state, {s['arrays']} arrays ({s['float32_arrays']} float32, "
        f"{s['bfloat16_arrays']} bfloat16), mix {s['mix']}, {s['layers']} layers, d_model {s['d_model']}, "
        f"vocab {s['vocab']}",
        f"dir {c['config']['dir']} ({c['config'].get('fs_type_name', '?')}), {c['config']['cores']} cores, "
        f"best of {c['config']['reps']}; cold reads: {c['config'].get('cold_reads', '?')}",
        "",
        f"{'':10} {'operation':40} {'seconds':>9} {'GiB/s':>7}  note",
        "-" * 100,
    ]
    last = None
    for group, op, secs, gbs, note in rows(c, p):
        if last is not None and group != last and (group in ("floor", "cairn", "codec") or last in ("floor", "cairn", "codec")):
            lines.append("")
        last = group
        lines.append(f"{group:10} {op:40} {fmt(secs, 4) if secs is not None else '-':>9} "
                     f"{fmt(gbs) if gbs is not None else '-':>7}  {note}")
    if mp is not None:
        lines += [""] + render_mp(c, mp, mp_rows(c, mp))
    lines += ["", f"{'target':54} {'ratio':>8} {'need':>7}  {'result':6} measured", "-" * 100]
    for t in targets:
        lines.append(f"{t.name:54} {fmt(t.ratio, 3) if t.ratio is not None else '-':>8} {t.op + ' ' + str(t.need):>7}  "
                     f"{t.status:6} {t.detail}")
        if t.note:
            lines.append(f"{'':6}{t.note}")
    passed = sum(t.status == "pass" for t in targets)
    missed = sum(t.status == "MISS" for t in targets)
    unmeasured = len(targets) - passed - missed
    lines += ["", f"{passed} of {len(targets)} targets met, {missed} missed"
              + (f", {unmeasured} not measured" if unmeasured else "")]
    return "\n".join(lines)


def render_chart(c, p, targets, path, mp=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [(f"{g}: {op}", gbs, g) for g, op, secs, gbs, _n in rows(c, p) if gbs is not None and g != "codec"
            and "memcpy" not in op and "read, warm" not in op and "blocked" not in op]
    colors = {"floor": "#7f7f7f", "cairn": "#1f77b4"}
    mp_data = mp_rows(c, mp) if mp and "skipped" not in mp else []
    top = max(6, 0.32 * len(data) + 1.5)
    fig = plt.figure(figsize=(16, top + (5 if mp_data else 0)))
    gs = fig.add_gridspec(2 if mp_data else 1, 2, width_ratios=[3, 2],
                          height_ratios=[top, 5] if mp_data else [1])
    ax1, ax2 = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
    labels = [d[0] for d in data][::-1]
    values = [d[1] for d in data][::-1]
    ax1.barh(labels, values, color=[colors.get(d[2], "#ff7f0e") for d in data][::-1])
    for i, v in enumerate(values):
        ax1.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax1.set_xlabel("GiB/s of state (higher is better)")
    ax1.set_title(f"Throughput, {c['state']['bytes'] / GIB:.2f} GiB state "
                  "(grey: floors, blue: cairn, orange: peers)", fontsize=10)
    ax1.tick_params(axis="y", labelsize=8)

    tl = [t for t in targets if t.ratio]
    margin = [(t.ratio / t.need if t.op == ">=" else t.need / t.ratio) for t in tl]
    ax2.barh([t.name for t in tl][::-1], margin[::-1],
             color=["#2ca02c" if t.status == "pass" else "#d62728" for t in tl][::-1])
    ax2.axvline(1.0, color="black", linewidth=1)
    ax2.set_xscale("log")
    if margin:
        ax2.set_xlim(min(margin + [1.0]) / 2, max(margin + [1.0]) * 2)
    for i, (t, m) in enumerate(zip(tl[::-1], margin[::-1])):
        ax2.text(m, i, f" {t.ratio:.3g} ({t.op} {t.need})", va="center", fontsize=8)
    ax2.set_xlabel("margin over the target (>= 1: met), log scale")
    ax2.set_title("Targets (green: pass, red: miss)", fontsize=10)
    ax2.tick_params(axis="y", labelsize=8)
    if mp_data:
        render_mp_chart(fig.add_subplot(gs[1, :]), c, mp, mp_data)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_mp_chart(ax, c, mp, mp_data):
    """Grouped bars: one group per operation, one bar per process count; a dashed line over each group marks
    the single-process floor it is compared with."""
    floors = c.get("floors", {})
    ops = [(k, t, f) for k, t, f in MP_COLUMNS if any(r[k]["gib_per_s"] is not None for r in mp_data)]
    width = 0.8 / max(1, len(mp_data))
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
    for j, r in enumerate(mp_data):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(ops))]
        vals = [r[k]["gib_per_s"] or 0 for k, _t, _f in ops]
        ax.bar(xs, vals, width * 0.9, label=f"{r['processes']} process{'es' if r['processes'] > 1 else ''}",
               color=palette[j % len(palette)])
        for x, v, (k, _t, _f) in zip(xs, vals, ops):
            ratio = r[k]["ratio_to_floor"]
            if v:
                ax.text(x, v, f"{v:.2f}" + (f"\n{ratio:.2f}x" if ratio is not None else ""), ha="center",
                        va="bottom", fontsize=7)
    floor_names = {"write_fsync": "write+fsync", "read_warm": "read warm", "read_cold": "read cold"}
    for i, (_k, _t, f) in enumerate(ops):
        fv = rate(floors.get(f))
        if fv:
            ax.hlines(fv, i - 0.45, i + 0.45, colors="#7f7f7f", linestyles="dashed", linewidth=1.2)
            ax.text(i - 0.45, fv * 1.03, f"{floor_names[f]} floor {fv:.2f}", va="bottom", ha="left", fontsize=7,
                    color="#555555")
    ax.set_xticks(range(len(ops)))
    ax.set_xticklabels([t for _k, t, _f in ops])
    ax.set_yscale("log")
    ax.set_ylabel("aggregate GiB/s (higher is better), log scale")
    state = next((r["state"] for r in mp["runs"].values() if isinstance(r, dict) and "state" in r), {})
    ax.set_title(f"Multi-process: {state.get('bytes', mp['size_gib'] * GIB) / GIB:.2f} GiB global state, rows split "
                 f"over n processes under mpirun ({c['config']['cores']} cores); dashed: single-process floors, "
                 "labels: GiB/s and x floor", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.margins(y=0.3)


# -------------------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------------------
# Delta checkpoints (issue 18): cairn_delta_bench
# ---------------------------------------------------------------------------------------------------------------

def run_delta(args, work):
    """Runs cairn_delta_bench (fine-tuning-shaped and full-change runs); returns its JSON with the ratios added."""
    exe = os.path.join(args.build_dir, "bench", "cairn_delta_bench")
    if not os.access(exe, os.X_OK):
        return {"skipped": f"{exe} is not built"}
    out = os.path.join(work, "delta.json")
    cmd = [exe, "--dir", os.path.join(work, "delta"), "--json", out, "--base-mib", str(args.delta_base_mib),
           "--adapter-mib", str(args.delta_adapter_mib), "--steps", str(args.delta_steps)]
    log(" ".join(cmd))
    subprocess.run(cmd, check=True)
    with open(out) as f:
        d = json.load(f)
    full = {r["mode"]: r for r in d["finetune"]}

    def later(values):  # steps after the first, which every mode writes in full
        rest = values[1:]
        return sum(rest) / len(rest)

    ratios = {}
    for mode in ("delta", "delta_frozen", "delta_shared"):
        if mode not in full:
            continue
        r = full[mode]
        ratios[mode] = {
            "bytes_written_fewer_x": later(full["full"]["bytes_written_per_step"]) / max(1.0, later(
                r["bytes_written_per_step"])),
            "save_faster_x": later(full["full"]["seconds_per_step"]) / later(r["seconds_per_step"]),
            "kept_vs_base_plus_adapters": r["kept_bytes"] / ((args.delta_base_mib + args.delta_steps *
                                                              args.delta_adapter_mib) * MIB),
        }
    fc = {r["mode"]: r for r in d["fullchange"]}
    ratios["fullchange_delta_vs_full_time"] = later(fc["delta"]["seconds_per_step"]) / later(
        fc["full"]["seconds_per_step"])
    d["ratios"] = ratios
    return d


def render_delta(d):
    if "skipped" in d:
        return f"Delta checkpoints: skipped ({d['skipped']})"
    cfg = d["config"]
    lines = [f"Delta checkpoints (issue 18): {cfg['base_mib']:g} MiB frozen base + {cfg['adapter_mib']:g} MiB adapter "
             f"changing every step, {cfg['steps']} steps; full change: everything changes, "
             f"{cfg['fullchange_steps']} steps",
             f"  {'run':<11} {'mode':<13} {'save s/step':>12} {'MiB written/step':>17} {'kept MiB':>9} "
             f"{'restored':>9}"]

    def later(values):
        rest = values[1:]
        return sum(rest) / len(rest)

    for run in ("finetune", "fullchange"):
        for r in d[run]:
            lines.append(f"  {run:<11} {r['mode']:<13} {later(r['seconds_per_step']):>12.3f} "
                         f"{later(r['bytes_written_per_step']) / MIB:>17.2f} {r['kept_bytes'] / MIB:>9.1f} "
                         f"{'exactly' if r['restored_exactly'] else 'WRONG':>9}")
    lines.append("  (steps after the first; the first step of every mode is a full save)")
    for mode in ("delta", "delta_frozen", "delta_shared"):
        if mode not in d["ratios"]:
            continue
        r = d["ratios"][mode]
        lines.append(f"  {mode}: {r['bytes_written_fewer_x']:.0f}x fewer bytes per step (need >= 50), "
                     f"{r['save_faster_x']:.1f}x faster saves (need >= 20), kept steps "
                     f"{r['kept_vs_base_plus_adapters']:.2f}x base + steps x adapter (need ~1)")
    lines.append(f"  full change: a delta save takes {d['ratios']['fullchange_delta_vs_full_time']:.2f}x a full "
                 f"save's time (need <= 1)")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gib", type=float, default=None, help="state size (default 2; 0.25 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a 256 MiB state, for trying things")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"), help="where cairn_bench was built")
    ap.add_argument("--dir", default=None, help="scratch directory for checkpoints (default <build-dir>/bench-data);"
                                                " must be on a disk, not tmpfs")
    ap.add_argument("--results", default=os.path.join(HERE, "results"), help="where latest.json/latest.png go")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each timed operation (best is kept)")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--mlp-ratio", type=int, default=4)
    ap.add_argument("--mix", default="train", choices=["train", "f32", "bf16"],
                    help="train: bfloat16 params + float32 Adam mu/nu; f32 or bf16: params only")
    ap.add_argument("--phases", default="async,floors,sync,restore,codecs", help="cairn_bench phases")
    ap.add_argument("--peers", default="torch,numpy,zarr,zarr_zstd1,h5py", help="peers to run ('' for none)")
    ap.add_argument("--peer-budget-s", type=float, default=15.0,
                    help="a peer's save or load stops repeating once its repetitions took this long")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold reads (no page-cache drop)")
    ap.add_argument("--no-orbax", dest="orbax", action="store_false",
                    help="skip the real Orbax (bench/orbax_peer.py in the interop environment)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--mp-procs", default="1,2,4",
                    help="process counts for the multi-process rows (cairn_bench_mp under mpirun; '' for none)")
    ap.add_argument("--mp-size-gib", type=float, default=None,
                    help="global state of the multi-process rows (default: the same as --size-gib)")
    ap.add_argument("--mp-reps", type=int, default=None, help="repetitions there (default: --reps)")
    ap.add_argument("--no-mp-zstd", dest="mp_zstd", action="store_false",
                    help="no zstd save and restore in the multi-process rows")
    ap.add_argument("--mp-timeout-s", type=float, default=600, help="limit on each mpirun")
    ap.add_argument("--no-delta", dest="delta", action="store_false", help="skip the delta-checkpoint rows")
    ap.add_argument("--only-delta", action="store_true", help="run only the delta-checkpoint rows")
    ap.add_argument("--delta-base-mib", type=float, default=None,
                    help="frozen base of the delta rows, MiB (default 2048; 256 with --quick)")
    ap.add_argument("--delta-adapter-mib", type=float, default=20, help="adapter changing every step (MiB)")
    ap.add_argument("--delta-steps", type=int, default=10, help="steps of the fine-tuning-shaped delta run")
    args = ap.parse_args()

    size = args.size_gib if args.size_gib is not None else (0.25 if args.quick else 2.0)
    if args.delta_base_mib is None:
        args.delta_base_mib = 256.0 if args.quick else 2048.0
    exe = os.path.join(args.build_dir, "bench", "cairn_bench")
    if not os.access(exe, os.X_OK) and not args.only_delta:
        sys.exit(f"bench: {exe} is not built; run `make bench`")
    work = os.path.abspath(args.dir or os.path.join(args.build_dir, "bench-data"))
    ftype = fs_type(work)
    if ftype in MEMORY_FILESYSTEMS:
        sys.exit(f"bench: {work} is on {ftype}, which is memory, not a disk: pass --dir on a real disk")
    if device_of(work) != device_of(ROOT):
        log(f"note: {work} is not on the same file system as the repository")
    parent = work
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    free = shutil.disk_usage(parent).free
    need = size * GIB * 5
    if free < need:
        sys.exit(f"bench: {free / GIB:.1f} GiB free under {parent}; a {size} GiB run needs about {need / GIB:.1f} GiB")
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    os.makedirs(args.results, exist_ok=True)

    if args.only_delta:
        d = run_delta(args, work)
        print(render_delta(d))
        out_json = os.path.join(args.results, "delta.json")
        with open(out_json, "w") as f:
            json.dump(d, f, indent=1)
        log(f"wrote {out_json}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return

    cold = not args.no_cold
    if cold and os.geteuid() != 0:
        log("not root: cold reads will say the page cache could not be dropped")

    started = datetime.datetime.now(datetime.timezone.utc)
    cairn_json = os.path.join(work, "cairn.json")
    cmd = [exe, "--dir", work, "--json", cairn_json, "--size-gib", str(size), "--reps", str(args.reps),
           "--layers", str(args.layers), "--vocab", str(args.vocab), "--mlp-ratio", str(args.mlp_ratio),
           "--mix", args.mix, "--phases", args.phases] + ([] if cold else ["--no-cold"])
    log(" ".join(cmd))
    subprocess.run(cmd, check=True)
    with open(cairn_json) as f:
        c = json.load(f)
    c["config"]["fs_type_name"] = ftype

    p = None
    dump = os.path.join(work, "floor")
    if args.peers and os.path.exists(os.path.join(dump, "manifest.json")):
        peers_json = os.path.join(work, "peers.json")
        pcmd = [sys.executable, os.path.join(HERE, "peers.py"), "--dump", dump, "--dir", work, "--json", peers_json,
                "--reps", str(args.reps), "--budget-s", str(args.peer_budget_s), "--peers", args.peers] + ([] if cold else ["--no-cold"])
        log(" ".join(pcmd))
        subprocess.run(pcmd, check=True)
        with open(peers_json) as f:
            p = json.load(f)
    elif args.peers:
        log("peers skipped: the floors phase did not run, so there is no dump of the state")

    # cairn's Python module on the same bytes: how long an async save() blocks a Python caller.
    py_pkg = os.path.join(args.build_dir, "python")
    if os.path.exists(os.path.join(dump, "manifest.json")) and os.path.isdir(os.path.join(py_pkg, "cairn")):
        py_json = os.path.join(work, "python_async.json")
        env = dict(os.environ, PYTHONPATH=py_pkg)
        pycmd = [sys.executable, os.path.join(HERE, "python_async.py"), "--dump", dump, "--dir", work, "--json",
                 py_json, "--reps", str(args.reps)]
        log(" ".join(pycmd))
        subprocess.run(pycmd, check=True, env=env)
        with open(py_json) as f:
            c["python_async"] = json.load(f)
    else:
        c["python_async"] = {"unavailable": "no dump of the state, or the Python module was not built"}

    # Orbax itself, the first peer, and cairn's module in the same harness (issue 12's targets).
    if args.orbax and os.path.exists(os.path.join(dump, "manifest.json")):
        c["orbax_peer"] = run_orbax_peer(args, work, dump, cold)
    elif args.orbax:
        log("Orbax skipped: the floors phase did not run, so there is no dump of the state")

    mp_size = args.mp_size_gib if args.mp_size_gib is not None else size
    mp = run_multi_process(args, work, mp_size, cold)
    if "skipped" in mp:
        log("multi-process: skipped: " + mp["skipped"])

    delta = run_delta(args, work) if args.delta else {"skipped": "--no-delta"}

    targets = compute_targets(c, p)
    table = render_table(c, p, targets, mp) + "\n" + render_delta(delta)
    print(table)

    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "unknown"
    result = {
        "started_utc": started.isoformat(timespec="seconds"),
        "git_revision": rev,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "transparent_hugepage": thp_mode()},
        "args": vars(args) | {"size_gib": size},
        "state": {k: v for k, v in c["state"].items() if k != "shapes"},
        "shapes": c["state"].get("shapes"),
        "config": c["config"],
        "floors": c.get("floors"),
        "cairn": c.get("cairn"),
        "codecs": c.get("codecs"),
        "peers": (p or {}).get("peers"),
        "orbax": c.get("orbax_peer"),
        "multi_process": mp | ({"rows": mp_rows(c, mp)} if "skipped" not in mp else {}),
        "delta": delta,
        "targets": [t.to_json() for t in targets],
        "table": table.splitlines(),
    }
    out_json = os.path.join(args.results, "latest.json")
    with open(out_json, "w") as f:
        json.dump(result, f, indent=1)
    out_png = os.path.join(args.results, "latest.png")
    try:
        render_chart(c, p, targets, out_png, mp)
    except ImportError as e:
        log(f"no chart: {e} (python3-matplotlib: scripts/install-deps.sh --bench)")
        out_png = None
    log(f"wrote {out_json}" + (f" and {out_png}" if out_png else ""))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
