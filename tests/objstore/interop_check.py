"""The real TensorStore and Orbax against the loopback object-store servers, for tests/python/test_object_store.py.
Run with the interop environment's Python; the servers' addresses come from the environment the test sets
(AWS_ENDPOINT_URL and the AWS_* credentials for S3, STORAGE_EMULATOR_HOST for GCS).

    interop_check.py tensorstore-read URL PARAM   prints the array PARAM (dotted key path) of the single-item OCDBT
                                                  checkpoint at URL as a JSON list, read by TensorStore's own
                                                  ocdbt + zarr drivers over its gcs or s3 kvstore
    interop_check.py orbax-restore ROOT STEP      prints step STEP of the CheckpointManager directory ROOT (one
                                                  default item) as restored by Orbax's CheckpointManager, as JSON
                                                  {dotted key path: list} (gs:// only, as orbax-save)
    interop_check.py orbax-save URL               Orbax (StandardCheckpointer) saves {"w": arange(12).reshape(3, 4)
                                                  float32, "n": 5} at URL (gs:// only: Orbax reaches GCS through
                                                  etils.epath + gcsfs and TensorStore)
"""

import json
import os
import sys
from urllib.parse import urlparse


def gcs_environment():
    # TensorStore's own switches for another GCS endpoint and a fixed token (its test hooks); gcsfs reads
    # STORAGE_EMULATOR_HOST itself and is told to send no credentials.
    os.environ["TENSORSTORE_GCS_HTTP_URL"] = os.environ["STORAGE_EMULATOR_HOST"]
    os.environ.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")
    # gcsfs's zonal/hierarchical bucket support asks a gRPC control API the emulator lacks (a minute's timeout for
    # every bucket): off.
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    import fsspec

    fsspec.config.conf.setdefault("gcs", {})["token"] = "anon"


def base_kvstore(url):
    parsed = urlparse(url)
    path = parsed.path.lstrip("/") + "/"
    if parsed.scheme == "gs":
        gcs_environment()
        return {"driver": "gcs", "bucket": parsed.netloc, "path": path}
    return {"driver": "s3", "bucket": parsed.netloc, "path": path, "endpoint": os.environ["AWS_ENDPOINT_URL"],
            "aws_region": os.environ.get("AWS_REGION", "us-east-1"), "aws_credentials": {"type": "environment"}}


def tensorstore_read(url, param):
    import tensorstore as ts

    spec = {"driver": "zarr", "kvstore": {"driver": "ocdbt", "base": base_kvstore(url), "path": param + "/"}}
    array = ts.open(spec, open=True, read=True).result().read().result()
    print(json.dumps(array.tolist()))


def orbax_save(url):
    gcs_environment()
    import numpy as np
    import orbax.checkpoint as ocp

    ckptr = ocp.StandardCheckpointer()
    ckptr.save(url, {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "n": 5})
    ckptr.wait_until_finished()
    ckptr.close()
    print("saved", url)


def orbax_restore(root, step):
    gcs_environment()
    import jax
    import numpy as np
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager(root) as mngr:
        restored = mngr.restore(int(step), args=ocp.args.StandardRestore())
    leaves = jax.tree_util.tree_flatten_with_path(restored)[0]
    print(json.dumps({".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): np.asarray(v).tolist()
                      for path, v in leaves}))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "tensorstore-read":
        tensorstore_read(*args)
    elif command == "orbax-restore":
        orbax_restore(*args)
    elif command == "orbax-save":
        orbax_save(*args)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
