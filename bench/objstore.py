"""Object-store bench: cairn's checkpoint save and restore against the loopback S3 (moto) and GCS
(fake-gcs-server) servers, beside boto3 and TensorStore moving the same bytes, with request counts.

    make bench-objstore                       (or: $(bash scripts/install-deps.sh --print-venv)/bin/python
    bench/objstore.py --build-dir build-bench [--size-mib 256] [--arrays 16] [--reps 3]

Run with the interop environment's Python (boto3, TensorStore, the servers). The servers are loopback emulators
written in Python (moto) and Go (fake-gcs-server): absolute numbers measure them as much as the clients, so the
table's point is the ratio between clients on the same server, and the requests each needs. Prints a table and
writes bench/results/objstore.json.
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUCKET = "cairn-bench"


class Servers:
    def __init__(self, kind):
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/objstore/servers.py"), kind,
                                      "--bucket", BUCKET], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        words = self.proc.stdout.readline().split()
        if not words or words[0] != "READY":
            raise SystemExit(f"the {kind} server did not start")
        self.url = words[2]

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def state(size_mib, arrays):
    rng = np.random.default_rng(0)
    n = size_mib * (1 << 20) // 4 // arrays
    return [rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(arrays)]


def best_of(reps, fn):
    times = []
    for rep in range(reps):
        t0 = time.perf_counter()
        fn(rep)
        times.append(time.perf_counter() - t0)
    return min(times)


def run_cairn(args, kind, endpoint):
    exe = os.path.join(args.build_dir, "bench", "cairn_objstore_bench")
    url = f"{'s3' if kind == 's3' else 'gs'}://{BUCKET}/cairn"
    # The emulators take any credentials (S3) or none (GCS, anonymous when STORAGE_EMULATOR_HOST is set).
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", STORAGE_EMULATOR_HOST=endpoint)
    out = subprocess.run([exe, kind, endpoint, url, str(args.size_mib), str(args.arrays), str(args.reps)],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_boto3(args, endpoint, arrays):
    import boto3
    import botocore.config

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                      aws_secret_access_key="bench",
                      config=botocore.config.Config(max_pool_connections=32))
    count = {"n": 0}
    s3.meta.events.register("before-send", lambda **kw: count.__setitem__("n", count["n"] + 1))
    pool = concurrent.futures.ThreadPoolExecutor(32)

    def save(rep):
        list(pool.map(lambda ia: s3.put_object(Bucket=BUCKET, Key=f"boto3/{rep}/a{ia[0]}", Body=ia[1].tobytes()),
                      enumerate(arrays)))

    def restore(rep):
        list(pool.map(lambda i: s3.get_object(Bucket=BUCKET, Key=f"boto3/{rep}/a{i}")["Body"].read(),
                      range(len(arrays))))

    count["n"] = 0
    save_s = best_of(args.reps, save)
    save_requests = count["n"] // args.reps
    count["n"] = 0
    restore_s = best_of(args.reps, restore)
    restore_requests = count["n"] // args.reps
    return {"save_s": save_s, "save_mib_s": args.size_mib / save_s, "save_requests": save_requests,
            "restore_s": restore_s, "restore_mib_s": args.size_mib / restore_s, "restore_requests": restore_requests}


def run_tensorstore(args, kind, endpoint, arrays):
    import tensorstore as ts

    if kind == "gcs":
        os.environ["TENSORSTORE_GCS_HTTP_URL"] = endpoint
        os.environ.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "bench")
        base = {"driver": "gcs", "bucket": BUCKET}
    else:
        os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
        base = {"driver": "s3", "bucket": BUCKET, "endpoint": endpoint, "aws_region": "us-east-1",
                "aws_credentials": {"type": "environment"}}

    def spec(rep, i, a=None):
        s = {"driver": "zarr", "kvstore": dict(base, path=f"tensorstore/{rep}/a{i}/")}
        if a is not None:
            s["metadata"] = {"shape": list(a.shape), "chunks": list(a.shape), "dtype": "<u4", "compressor": None}
        return s

    def save(rep):
        stores = [ts.open(spec(rep, i, a), create=True, delete_existing=True).result() for i, a in enumerate(arrays)]
        futures = [store.write(a) for store, a in zip(stores, arrays)]
        for f in futures:
            f.result()

    def restore(rep):
        stores = [ts.open(spec(rep, i), open=True).result() for i in range(len(arrays))]
        futures = [store.read() for store in stores]
        for f in futures:
            f.result()

    save_s = best_of(args.reps, save)
    restore_s = best_of(args.reps, restore)
    return {"save_s": save_s, "save_mib_s": args.size_mib / save_s, "save_requests": None,
            "restore_s": restore_s, "restore_mib_s": args.size_mib / restore_s, "restore_requests": None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--arrays", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    args = ap.parse_args()

    arrays = state(args.size_mib, args.arrays)
    results = {"size_mib": args.size_mib, "arrays": args.arrays, "reps": args.reps, "rows": {}}
    for kind in ("s3", "gcs"):
        server = Servers(kind)
        try:
            rows = {"cairn": run_cairn(args, kind, server.url)}
            if kind == "s3":
                rows["boto3"] = run_boto3(args, server.url, arrays)
            rows["tensorstore"] = run_tensorstore(args, kind, server.url, arrays)
            results["rows"][kind] = rows
        finally:
            server.stop()

    print(f"{args.size_mib} MiB in {args.arrays} arrays, best of {args.reps}; ratio = cairn's throughput / the "
          f"peer's (> 1: cairn faster)")
    print(f"{'server':8} {'client':12} {'save MiB/s':>11} {'requests':>9} {'restore MiB/s':>14} {'requests':>9} "
          f"{'save ratio':>11} {'restore ratio':>14}")
    for kind, rows in results["rows"].items():
        c = rows["cairn"]
        for name, r in rows.items():
            ratio_s = c["save_mib_s"] / r["save_mib_s"]
            ratio_r = c["restore_mib_s"] / r["restore_mib_s"]
            r["cairn_ratio"] = {"save": ratio_s, "restore": ratio_r}
            req = lambda v: "n/a" if v is None else str(v)
            print(f"{kind:8} {name:12} {r['save_mib_s']:11.1f} {req(r['save_requests']):>9} "
                  f"{r['restore_mib_s']:14.1f} {req(r['restore_requests']):>9} {ratio_s:11.2f} {ratio_r:14.2f}")
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "objstore.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
