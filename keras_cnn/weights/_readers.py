"""Checkpoint files as ``{name: numpy array}``: PyTorch ``.pth``/``.pt``/``.bin``, ``.safetensors``, the legacy
Keras ``.h5`` files of keras.applications, and ``.npz``.

PyTorch's zip format is read without torch: its pickle is unpickled with a restricted unpickler that knows only
tensors, storages and plain containers (what ``torch.load(weights_only=True)`` allows), and the storages are read
as NumPy arrays. torch cannot be imported after TensorFlow in one process, so the old (pre-1.6, non-zip) format,
which needs torch, is converted in a child process when torch is installed.
"""

import collections
import dataclasses
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

FORMATS = {".pth": "torch", ".pt": "torch", ".bin": "torch", ".ckpt": "torch", ".tar": "torch",
           ".safetensors": "safetensors", ".h5": "keras-h5", ".hdf5": "keras-h5", ".npz": "npz"}
# PyTorch storage class -> NumPy dtype (bfloat16 is widened to float32 by bit shifting)
_STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bf16",
             "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
             "ByteStorage": "u1", "BoolStorage": "?"}
_SAFETENSORS_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "bf16", "I64": "<i8", "I32": "<i4",
                       "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The tensors of one checkpoint file, by their names in the file."""

    path: str
    format: str  # "torch", "safetensors", "keras-h5" or "npz"
    tensors: dict

    def describe(self):
        return f"{os.path.basename(self.path)} ({self.format}, {len(self.tensors)} tensors)"


def read_checkpoint(path):
    """Read ``path`` into a :class:`Checkpoint`; an unknown, truncated or unreadable file is a ``ValueError``
    naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} does not exist.")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"weights file {path!r} has an unknown format; expected one of "
                         f"{sorted(FORMATS)} (or '.weights.h5' saved by Keras).")
    kind = FORMATS[suffix]
    try:
        tensors = _READERS[kind](path)
    except ValueError:
        raise
    except Exception as error:  # a truncated or corrupt file fails in the format's own library
        raise ValueError(f"weights file {path!r} could not be read as {kind}: {type(error).__name__}: "
                         f"{error}") from error
    if not tensors:
        raise ValueError(f"weights file {path!r} holds no tensors.")
    return Checkpoint(path, kind, tensors)


def _read_torch(path):
    if not zipfile.is_zipfile(path):
        return _read_torch_legacy(path)
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise ValueError(f"weights file {path!r} is a zip file without a PyTorch 'data.pkl'.")
        root = pickles[0][: -len("data.pkl")]
        order = _byte_order(archive, root)
        unpickler = _TorchUnpickler(io.BytesIO(archive.read(pickles[0])), archive, root, order)
        return _state_dict(unpickler.load(), path)


def _byte_order(archive, root):
    try:
        return archive.read(root + "byteorder").decode().strip()
    except KeyError:
        return "little"


class _TorchUnpickler(pickle.Unpickler):
    """Only tensors, storages and containers, as ``torch.load(weights_only=True)``; anything else is refused."""

    def __init__(self, file, archive, root, order):
        super().__init__(file)
        self._archive, self._root, self._order = archive, root, order
        self._storages = {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad, hooks, *rest: data
        if module == "torch" and name in _STORAGES:
            return name
        if module == "torch" and name in ("device", "Size"):
            return tuple if name == "Size" else str
        raise pickle.UnpicklingError(f"the checkpoint refers to {module}.{name}, which a weights file never "
                                     "needs (only tensors and containers are read)")

    def persistent_load(self, pid):
        _, storage_type, key, _, count = pid
        name = storage_type if isinstance(storage_type, str) else getattr(storage_type, "__name__", "")
        if name not in _STORAGES:
            raise pickle.UnpicklingError(f"unknown PyTorch storage type {storage_type!r}")
        if key not in self._storages:
            raw = self._archive.read(f"{self._root}data/{key}")
            self._storages[key] = _decode(raw, _STORAGES[name], self._order)[:count]
        return self._storages[key]


def _decode(raw, dtype, order="little"):
    if dtype == "bf16":
        halves = np.frombuffer(raw, dtype="<u2" if order == "little" else ">u2").astype(np.uint32)
        return (halves << 16).view(np.float32)
    dtype = np.dtype(dtype)
    if order != "little" and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">")
    return np.frombuffer(raw, dtype=dtype)


def _rebuild_tensor(storage, offset, size, stride, *rest):
    if len(size) == 0:
        return np.array(storage[offset])
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * storage.itemsize for s in stride))
    return np.ascontiguousarray(view)


def _state_dict(obj, path):
    """The tensors of a state dict, unwrapping ``{"state_dict": ...}``/``{"model": ...}`` and ``module.``."""
    for key in ("state_dict", "model", "model_state_dict", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError(f"weights file {path!r} holds a {type(obj).__name__}, not a state dict of tensors.")
    tensors = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if tensors and all(k.startswith("module.") for k in tensors):  # saved from DataParallel
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


_LEGACY_SCRIPT = """
import sys, numpy, torch
state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
state = state.get("state_dict", state)
numpy.savez(sys.argv[2], **{k: v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
                            for k, v in state.items() if hasattr(v, "numpy")})
"""


def _read_torch_legacy(path):
    """The pre-1.6 PyTorch format, through torch in a child process (torch must not follow TensorFlow in one)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise ValueError(f"weights file {path!r} is in PyTorch's legacy (pre-1.6, non-zip) format, which only "
                         "torch reads; install torch (pip install torch) or re-save it with a current torch.")
    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, "tensors.npz")
        done = subprocess.run([sys.executable, "-c", _LEGACY_SCRIPT, path, target], capture_output=True, text=True)
        if done.returncode:
            raise ValueError(f"torch could not read {path!r}: {done.stderr.strip().splitlines()[-1:]}")
        return _read_npz(target)


def _read_safetensors(path):
    """The safetensors layout: an 8-byte header length, a JSON header, then the raw little-endian tensors."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        length = int.from_bytes(file.read(8), "little")
        if length <= 0 or 8 + length > size:
            raise ValueError(f"weights file {path!r} is not a complete safetensors file (header of {length} bytes "
                             f"in a file of {size}).")
        header = json.loads(file.read(length))
        data = file.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        if end > len(data):
            raise ValueError(f"weights file {path!r} is truncated: tensor {name!r} ends at byte {end} of "
                             f"{len(data)}.")
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise ValueError(f"tensor {name!r} of {path!r} has the unsupported dtype {info['dtype']}.")
        values = _decode(data[start:end], _SAFETENSORS_DTYPES[info["dtype"]])
        tensors[name] = values.reshape(info["shape"]).copy()
    return tensors


def _read_keras_h5(path):
    """keras.applications' legacy weight files: a group per layer, its ``weight_names`` attribute in order."""
    import h5py

    with h5py.File(path, "r") as file:
        root = file["model_weights"] if "model_weights" in file else file
        if "layer_names" not in root.attrs:
            raise ValueError(f"weights file {path!r} is an HDF5 file without Keras's 'layer_names'; a Keras 3 "
                             "'.weights.h5' file must keep that suffix.")
        tensors = {}
        layers = _strings(root.attrs["layer_names"])
        names = _renumbered(layers)
        for layer in layers:
            group = root[layer]
            for weight in _strings(group.attrs.get("weight_names", [])):
                variable = weight.split("/")[-1].split(":")[0]
                tensors[f"{names.get(layer, layer)}/{variable}"] = np.asarray(group[weight])
        return tensors


# Layers Keras names itself: "<kind>" or "<kind>_<n>", numbered per kind across the whole session.
_AUTO_NAME = re.compile(r"(conv2d|batch_normalization|dense|depthwise_conv2d|separable_conv2d)(?:_(\d+))?")


def _renumbered(layers):
    """``{file name: name}`` for the layers Keras named itself (keras.applications' InceptionV3 and
    InceptionResNetV2 leave most convolutions unnamed): their numbers count every layer of the kind created in
    the session that saved the file, so one application saved in two sessions numbers them from different
    offsets. They are renamed by creation rank from 1 (``conv2d_1`` first), the numbering of keras.applications'
    released files (saved by Keras 2, which started at 1); converters name them so."""
    ranks = {}
    for layer in layers:
        match = _AUTO_NAME.fullmatch(layer)
        if match:
            ranks.setdefault(match.group(1), []).append((int(match.group(2) or 0), layer))
    return {layer: f"{kind}_{rank}" for kind, found in ranks.items()
            for rank, (_, layer) in enumerate(sorted(found), start=1)}


def _strings(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _read_npz(path):
    with np.load(path, allow_pickle=False) as file:
        return {name: file[name] for name in file.files}


_READERS = {"torch": _read_torch, "safetensors": _read_safetensors, "keras-h5": _read_keras_h5, "npz": _read_npz}


def write_safetensors(tensors, path):
    """Write ``{name: array}`` as a safetensors file (float32/float16/int64/...): how converted or generated
    checkpoints are stored without torch."""
    codes = {np.dtype(v): k for k, v in _SAFETENSORS_DTYPES.items() if v != "bf16"}
    header, offset, blobs = {}, 0, []
    for name, value in tensors.items():
        value = np.ascontiguousarray(value)
        blob = value.astype(value.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[value.dtype], "shape": list(value.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as file:
        file.write(len(encoded).to_bytes(8, "little") + encoded)
        for blob in blobs:
            file.write(blob)
    return path
