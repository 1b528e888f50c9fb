"""Write ``tests/goldens/torch_format.pth`` (a small state dict in PyTorch's zip format with the cases a reader
must get right) and ``torch_format.npz`` (the same tensors as NumPy): ``make goldens`` runs it; needs torch."""

import os

import numpy as np
import torch

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "goldens")


def sample():
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    state = {
        "conv.weight": torch.randn(8, 3, 3, 3),
        "half": torch.randn(5).half(),
        "bfloat": torch.randn(7).bfloat16(),
        "counter": torch.tensor(12, dtype=torch.int64),
        "transposed": base.t(),  # a non-contiguous view: strides (1, 6)
        "slice": base[1:3, 2:],  # a view at a storage offset
        "mask": torch.tensor([True, False, True]),
    }
    return state


def main():
    state = sample()
    torch.save(state, os.path.join(HERE, "torch_format.pth"))
    np.savez(os.path.join(HERE, "torch_format.npz"),
             **{k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in state.items()})


if __name__ == "__main__":
    main()
