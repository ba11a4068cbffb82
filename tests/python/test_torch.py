"""torch tensors are accepted on save (through DLPack, bfloat16 included) and restore as numpy arrays."""

import numpy as np
import torch  # python3-torch, installed by scripts/install-deps.sh

import cairn as ocp


def _to_torch(array):
    """A restored numpy array as a torch tensor; bfloat16 goes through its bits (numpy has no bfloat16)."""
    if array.dtype == ocp.bfloat16:
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(array)


TORCH_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16, torch.int32,
                torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128]


def _sample(dtype, shape=(3, 4)):
    t = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape) * 0.5 - 2
    if dtype == torch.bool:
        return t > 0
    return t.to(dtype)


def test_torch_tensors_round_trip(tmp_path):
    state = {str(dtype).removeprefix("torch."): _sample(dtype) for dtype in TORCH_DTYPES}
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "c", state)
        ckptr.wait_until_finished()
        back = ckptr.restore(tmp_path / "c")
    for name, tensor in state.items():
        restored = back[name]
        assert isinstance(restored, np.ndarray)
        assert ocp.dtype_name(restored.dtype) == name, (name, restored.dtype)
        assert torch.equal(_to_torch(restored), tensor), name


def test_torch_module_state_dict(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    # Parameters that require grad, a non-contiguous (transposed) tensor, bfloat16 weights.
    state = {"model": dict(model.state_dict()), "params": [p for p in model.parameters()],
             "transposed": model[0].weight.detach().t(), "bf16": model[2].weight.detach().to(torch.bfloat16)}
    assert state["params"][0].requires_grad and not state["transposed"].is_contiguous()
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "c", state)
        back = ckptr.restore(tmp_path / "c")
    restored = {k: torch.from_numpy(v) for k, v in back["model"].items()}
    model2 = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    model2.load_state_dict(restored)
    x = torch.randn(4, 8)
    assert torch.equal(model(x), model2(x))
    assert torch.equal(torch.from_numpy(back["params"][0]), model[0].weight.detach())
    assert torch.equal(torch.from_numpy(back["transposed"]), model[0].weight.detach().t())
    assert torch.equal(_to_torch(back["bf16"]), state["bf16"])
    # A bfloat16 tensor restored as float32 by asking for it.
    cast = ocp.Checkpointer(ocp.StandardCheckpointHandler()).restore(
        tmp_path / "c", args=ocp.args.StandardRestore(
            {**{k: ocp.ArraySpec(tuple(v.shape), np.float32) for k, v in [("bf16", state["bf16"])]},
             "model": {k: ocp.ArraySpec(tuple(v.shape), np.float32) for k, v in state["model"].items()},
             "params": [ocp.ArraySpec(tuple(p.shape), np.float32) for p in state["params"]],
             "transposed": ocp.ArraySpec(tuple(state["transposed"].shape), np.float32)}))
    assert torch.equal(torch.from_numpy(cast["bf16"]), state["bf16"].float())


def test_async_save_of_torch_tensor_snapshots_it(tmp_path):
    t = torch.arange(1 << 18, dtype=torch.float32)
    expected = t.clone()
    with ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "c", args=ocp.args.StandardSave({"t": t}))
        t.fill_(-1)
        ckptr.wait_until_finished()
        assert torch.equal(torch.from_numpy(ckptr.restore(tmp_path / "c")["t"]), expected)


def test_torch_dtypes_as_spec_dtypes():
    assert ocp.ArraySpec((2,), torch.bfloat16).dtype == ocp.bfloat16
    assert ocp.ArraySpec((2,), torch.float32).dtype == np.float32
    assert ocp.ArraySpec((2,), torch.bool).dtype == np.bool_
