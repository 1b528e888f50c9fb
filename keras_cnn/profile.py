"""Per-layer profile of a model: output shape, parameters, multiply-accumulates and activation memory.

``keras_cnn.profile(model)`` (or ``profile("resnet50", **build_args)``) returns a :class:`Profile`: one row per
layer call, in the model's layer order, and the totals. ``print(profile)`` shows the table; ``to_dict()`` is for JSON.

Conventions (those of ptflops, fvcore and the seeds' tables; the GMAC figures of docs/ follow them):

* Batch 1. Shapes, MACs and activation memory are for one image at the model's input size (``input_shape=``
  gives one for models built with ``None`` height or width).
* MACs count only the multiply-accumulates of weighted linear layers; a bias add is not a MAC.
  ``Conv``: H_out·W_out·C_out·(k_h·k_w·C_in/groups). ``DepthwiseConv``: H_out·W_out·C_out·k_h·k_w.
  ``SeparableConv``: that depthwise part plus the 1x1 pointwise part. ``Dense``: in·out (per position when it
  reads a map). ``ConvTranspose``: H_in·W_in·(kernel size). Every other layer is 0: batch normalisation,
  activations, pooling, additions, concatenations, LRN, channel shuffle/split. Some tools count those as FLOPs;
  here they are not MACs. ``DepthwiseAveragePooling2D`` is average pooling computed as a constant depthwise
  convolution (for int8 TFLite): 0, like the ``AveragePooling2D`` it replaces, so both forms of a model agree.
  FLOPs are about 2 × MACs.
* Custom layers: a layer that holds convolutions or dense layers as sub-layers (``ConcatBNReLUConv``'s ``conv``)
  counts them at the layer's output resolution (the sub-layer's channels come from its kernel). Subclasses of
  ``Conv2D`` (``WindowConv2D``) count as ``Conv2D``. Nested models are walked: their layers are rows named
  ``<model>/<layer>``. A wrapper around a model (``StochasticDepth`` around a residual branch) is walked with
  its last input (``[shortcut, x]`` → ``x``) and has a row of its own for its output; at inference the branch
  always runs, so it is counted in full. A layer called several times (shared) has a row per call (the later
  ones named ``<layer>#2``, ...) and its weights are counted at the first call.
* Parameters are the layer's own weights, trainable and non-trainable (BN moving statistics) separately;
  ``params`` is their sum. The parameter total equals ``model.count_params()``.
* Activation memory is the output's elements × bytes of its dtype (the layer's compute dtype: 4 for float32,
  2 under mixed precision), batch 1; the total is the sum over rows (every output kept, as in training).
"""

import dataclasses
import json

import keras
import numpy as np

from keras_cnn import _validate

_LINEAR = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv1D,
           keras.layers.DepthwiseConv2D, keras.layers.Dense)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)


@dataclasses.dataclass(frozen=True)
class LayerProfile:
    """One layer call: ``output_shape`` has no batch axis (a list of shapes for a layer with several outputs)."""

    name: str
    kind: str
    output_shape: tuple | list
    trainable_params: int
    non_trainable_params: int
    macs: int
    activation_bytes: int

    @property
    def params(self):
        return self.trainable_params + self.non_trainable_params

    def to_dict(self):
        shape = [list(s) for s in self.output_shape] if isinstance(self.output_shape, list) \
            else list(self.output_shape)
        return {"name": self.name, "kind": self.kind, "output_shape": shape, "params": self.params,
                "trainable_params": self.trainable_params, "non_trainable_params": self.non_trainable_params,
                "macs": self.macs, "activation_bytes": self.activation_bytes}


def _total(field):
    """A property: the sum of ``field`` over the rows."""
    return property(lambda self: sum(getattr(row, field) for row in self.rows), doc=f"Sum of the rows' {field}.")


@dataclasses.dataclass(frozen=True)
class Profile:
    """The rows of a model (see the module docstring for the conventions) and their totals."""

    model_name: str
    input_shape: tuple
    rows: tuple

    total_params = _total("params")
    total_trainable_params = _total("trainable_params")
    total_macs = _total("macs")
    total_activation_bytes = _total("activation_bytes")

    @property
    def gmacs(self):
        """Total MACs in billions (1e9)."""
        return self.total_macs / 1e9

    def __getitem__(self, name):
        """The row named ``name``."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no layer named {name!r} in the profile of {self.model_name!r}.")

    def to_dict(self):
        """JSON-ready: the model, its input shape, the totals and one dict per row."""
        return {"model": self.model_name, "input_shape": list(self.input_shape), "batch_size": 1,
                "totals": {"params": self.total_params, "trainable_params": self.total_trainable_params,
                           "macs": self.total_macs, "gmacs": self.gmacs,
                           "activation_bytes": self.total_activation_bytes},
                "layers": [row.to_dict() for row in self.rows]}

    def to_json(self, **kwargs):
        return json.dumps(self.to_dict(), **kwargs)

    def table(self):
        """An aligned text table: a header, one line per row, a totals line and a summary line."""
        header = ("layer", "type", "output shape", "params", "MACs", "activations (B)")
        lines = [(row.name, row.kind, _shape_text(row.output_shape), f"{row.params:,}", f"{row.macs:,}",
                  f"{row.activation_bytes:,}") for row in self.rows]
        totals = (f"total ({len(self.rows)} layers)", "", "", f"{self.total_params:,}", f"{self.total_macs:,}",
                  f"{self.total_activation_bytes:,}")
        widths = [max(len(line[i]) for line in (header, *lines, totals)) for i in range(len(header))]

        def render(cells):
            left = [cell.ljust(width) for cell, width in zip(cells[:3], widths)]
            right = [cell.rjust(width) for cell, width in zip(cells[3:], widths[3:])]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(render(header))
        summary = (f"{self.model_name}, input {_shape_text(self.input_shape)}, batch 1: "
                   f"{_scaled(self.total_params, 1000, 'KMG')} params ({self.total_trainable_params:,} trainable), "
                   f"{_scaled(self.total_macs, 1000, 'KMG')}MACs, "
                   f"{_scaled(self.total_activation_bytes, 1024, ('Ki', 'Mi', 'Gi'))}B of activations")
        return "\n".join([render(header), rule, *map(render, lines), rule, render(totals), summary])

    def __str__(self):
        return self.table()


def profile(model_or_name, **kwargs):
    """Profile a ``keras.Model`` (functional or Sequential), or build the registered model ``model_or_name``
    with ``keras_cnn.build(model_or_name, **kwargs)`` and profile that.

    With a model the only keyword is ``input_shape=(H, W, C)``: the size to profile at, needed when the model
    was built with a ``None`` height or width. Returns a :class:`Profile`.
    """
    if isinstance(model_or_name, str):
        from keras_cnn.registry import build

        model = build(model_or_name, **kwargs)
        input_shape = None
    else:
        model = _validate.check_model(model_or_name, name="model_or_name")
        unknown = sorted(set(kwargs) - {"input_shape"})
        if unknown:
            raise TypeError(f"profile(model, ...) accepts only input_shape; received {', '.join(unknown)} "
                            "(build arguments go with a model name: profile('resnet50', classes=10)).")
        input_shape = kwargs.get("input_shape")
    graph = _graph_of(model)
    if graph is None:
        raise TypeError(f"model_or_name must be a functional or Sequential keras.Model; received the subclassed "
                        f"model {model.name!r} ({type(model).__name__}), whose layers have no graph to walk.")
    inputs = _input_specs(graph, input_shape)
    walker = _Walker()
    walker.walk(graph, inputs, prefix="")
    return Profile(model.name, tuple(inputs[0].shape[1:]) if len(inputs) == 1
                   else tuple(tuple(x.shape[1:]) for x in inputs), tuple(walker.rows))


def _graph_of(model):
    """The functional graph of a model (a Sequential's inner one), or None for a subclassed model."""
    if isinstance(model, keras.Sequential):
        if not model.built or getattr(model, "_functional", None) is None:
            raise ValueError(f"Sequential model {model.name!r} has no input shape yet; build it first "
                             "(keras.Input as its first layer, or model.build(input_shape)).")
        return model._functional
    return model if hasattr(model, "_run_through_graph") else None


def _input_specs(graph, input_shape):
    inputs = graph.inputs
    if input_shape is not None:
        shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
        if len(inputs) != 1 or shape is None or len(shape) != len(inputs[0].shape) - 1 or \
                any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise ValueError(f"input_shape must be a tuple of {len(inputs[0].shape) - 1} positive integers (no "
                             f"batch axis) for a one-input model; received {input_shape!r}.")
        if any(ref is not None and ref != d for ref, d in zip(inputs[0].shape[1:], shape)):
            raise ValueError(f"input_shape {shape} does not fit the model's input {tuple(inputs[0].shape[1:])}.")
        return [keras.KerasTensor((1, *shape), dtype=inputs[0].dtype)]
    for x in inputs:
        if None in x.shape[1:]:
            raise ValueError(f"the model's input {x.name!r} has shape {tuple(x.shape)}: pass input_shape=(H, W, C) "
                             "to profile it at one size (MACs depend on the spatial size).")
    return [keras.KerasTensor((1, *x.shape[1:]), dtype=x.dtype) for x in inputs]


class _Walker:
    """Runs the graphs on batch-1 shape specs, records one row per layer call."""

    def __init__(self):
        self.rows = []
        self.calls = {}  # id(layer) -> calls so far (shared layers)
        self.counted = set()  # ids of weights already attributed to a row

    def walk(self, graph, inputs, prefix):
        """Run ``graph`` on ``inputs`` (specs); the rows come out in the graph's layer order."""
        records = {}

        def call(op, *args, **kwargs):
            outputs, rows = self._call(op, args, kwargs, prefix)
            records.setdefault(id(op), []).append(rows)
            return outputs

        outputs = graph._run_through_graph(inputs, call_fn=call)
        for op in graph.operations:
            for rows in records.get(id(op), []):
                self.rows.extend(rows)
        return outputs

    def _call(self, op, args, kwargs, prefix):
        """Outputs of one call of ``op`` and its rows (a nested graph's rows, then the wrapper's own row)."""
        nested = _graph_of(op) if isinstance(op, keras.Model) else None
        if nested is not None:
            return self._nested(nested, keras.tree.flatten(args), f"{prefix}{op.name}/")
        rows = []
        inner = _graph_of(op.layer) if isinstance(op, keras.layers.Wrapper) and isinstance(op.layer, keras.Model) \
            else None
        if inner is not None:  # the wrapped model's rows carry its MACs
            _, rows = self._nested(inner, keras.tree.flatten(args)[-1:], f"{prefix}{op.layer.name}/")
        outputs = op.compute_output_spec(*args, **kwargs)
        rows.append(self._row(op, args, outputs, prefix, walked=inner is not None))
        return outputs, rows

    def _nested(self, graph, inputs, prefix):
        outer, self.rows = self.rows, []
        try:
            outputs = self.walk(graph, inputs, prefix)
            return outputs, self.rows
        finally:
            self.rows = outer

    def _row(self, op, args, outputs, prefix, walked=False):
        count = self.calls[id(op)] = self.calls.get(id(op), 0) + 1
        name = prefix + op.name + (f"#{count}" if count > 1 else "")
        flat = keras.tree.flatten(outputs)
        shapes = [tuple(x.shape[1:]) for x in flat]
        activation = sum(int(np.prod(x.shape)) * np.dtype(keras.backend.standardize_dtype(x.dtype)).itemsize
                         for x in flat)
        trainable, non_trainable = (self._new_weights(getattr(op, kind, []))
                                    for kind in ("trainable_weights", "non_trainable_weights"))
        macs = 0 if walked or not isinstance(op, keras.layers.Layer) else _macs(op, keras.tree.flatten(args), flat[0])
        return LayerProfile(name, type(op).__name__, shapes[0] if len(shapes) == 1 else shapes, trainable,
                            non_trainable, macs, activation)

    def _new_weights(self, weights):
        fresh = [w for w in weights if id(w) not in self.counted]
        self.counted.update(id(w) for w in fresh)
        return sum(int(np.prod(w.shape)) for w in fresh)


def _macs(layer, inputs, output):
    """Multiply-accumulates of one call (module docstring); sub-layers at the output's resolution."""
    if isinstance(layer, _SEPARABLE):
        return _positions(layer, output) * (_size(layer.depthwise_kernel) + _size(layer.pointwise_kernel))
    if isinstance(layer, _TRANSPOSED):
        return _positions(layer, inputs[0]) * _size(layer.kernel)
    if isinstance(layer, _LINEAR):
        return _positions(layer, output) * _size(layer.kernel)
    return sum(_macs(sub, [], output) for sub in layer._flatten_layers(include_self=False)
               if isinstance(sub, _LINEAR + _SEPARABLE))


def _positions(layer, tensor):
    """The number of spatial positions of ``tensor`` (all axes but batch and channels)."""
    shape = tuple(tensor.shape)
    spatial = shape[2:] if getattr(layer, "data_format", "channels_last") == "channels_first" else shape[1:-1]
    if None in spatial:
        raise ValueError(f"layer {layer.name!r} has an unknown spatial size {shape}; pass input_shape=(H, W, C).")
    return int(np.prod(spatial, dtype=np.int64))


def _size(weight):
    return int(np.prod(weight.shape, dtype=np.int64))


def _scaled(value, base, prefixes):
    """``15470264320, 1000, "KMG"`` -> ``"15.47 G"``; below ``base``: the number itself."""
    prefix = ""
    for step in prefixes:
        if value < base:
            break
        value, prefix = value / base, step
    return f"{value:.2f} {prefix}" if prefix else f"{value} "


def _shape_text(shape):
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "x".join("?" if d is None else str(d) for d in shape)
