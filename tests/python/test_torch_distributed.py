"""A PyTorch job of two processes (torch.distributed, gloo, on loopback): cairn takes the job's processes as its
process group by itself (cairn.multihost over torch.distributed's store), the processes save one checkpoint
together (the primary commits it) and both restore it."""

import os
import sys

from processes import free_port, run_processes

WORKER = r'''
import os, sys
import numpy as np
import torch.distributed as dist
rank, port, directory = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
import cairn as ocp
assert ocp.multihost.process_count() == 2 and ocp.multihost.process_index() == rank
state = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "step": 9}
with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(directory, state)
ocp.multihost.sync_global_processes("saved")
assert os.path.exists(os.path.join(directory, "commit_success.txt"))
with ocp.StandardCheckpointer() as ckptr:
    back = ckptr.restore(directory)
assert np.array_equal(back["w"], state["w"]) and back["step"] == 9, back
dist.destroy_process_group()
print(f"TORCH-WORKER PASS {rank}", flush=True)
'''


def test_torch_job_saves_and_restores_together(tmp_path):
    port = free_port()
    run_processes(2, lambda rank: [sys.executable, "-c", WORKER, str(rank), str(port), str(tmp_path / "ckpt")],
                  lambda rank: f"TORCH-WORKER PASS {rank}", timeout=240, env=dict(os.environ))
