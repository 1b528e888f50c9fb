"""Multi-scale feature maps of any model's trunk, for detection and segmentation heads.

:func:`feature_extractor` returns a functional model whose output is a dict ``{"stride4": map, ...}`` of stage
outputs keyed by their total stride (timm's ``features_only``, keras-hub's ``pyramid_outputs``). It shares the
trunk's layers and weights.

Two questions are answered on the functional graph, never from spatial-size ratios (AlexNet's 227-pixel input and
valid convolutions make those ratios no power of two):

- the stride of every tensor: the largest stride among its inputs times the layer's own ``strides`` (any layer
  that has the attribute: convolutions, poolings, keras_cnn's ceil-mode and depthwise-average pooling); global
  pooling (squeeze-and-excitation) gives a map without a stride, which other maps' strides outrank. A layer that
  changes the spatial size without a ``strides`` attribute (other than padding and cropping) is an error, so a
  new kind of layer is noticed.
- which tensor represents a stride: the last, in topological order, that is a *cut point* of the graph between
  the input and the deepest map, i.e. a tensor every path from the input to the deepest map goes through (with
  one source and one sink, exactly the tensors that no edge jumps over in a topological order). Zero padding and
  cropping only prepare the next layer's input, so their input represents them.
"""

import keras

from keras_cnn._compat import node, producer
from keras_cnn.model import has_config, model_config, rebuild
from keras_cnn.registry import build

_RESIZING = (keras.layers.ZeroPadding2D, keras.layers.Cropping2D)  # change the size, not the stride
_GLOBAL = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
_HEAD_ARGS = ("include_top", "pooling")


def feature_extractor(model_or_name, **build_args):
    """A ``keras.Model`` mapping an image to the last feature map at each total stride of a model's trunk.

    Args:
        model_or_name: a registered model name (``keras_cnn.list_models()``), built with ``include_top=False``
            and ``build_args`` (``input_shape``, ``input_tensor``, ``weights``, the family's options...); or a
            ``keras.Model``: a trunk (``include_top=False``, no pooling: its output is a 4-D map) is used as it
            is, sharing its layers and weights.
        **build_args: arguments of ``keras_cnn.build`` other than ``include_top`` and ``pooling``.

    Returns:
        A functional ``keras.Model`` named ``<model>_features`` whose output is a dict with keys ``"stride2"``,
        ``"stride4"``, ... ``"stride32"`` for the strides (> 1) the model has, in increasing order. The deepest
        map is the trunk's output itself (the ``include_top=False`` output of the model).

    The map at stride ``s`` is the last tensor of stride ``s``, in topological order, that every path from the
    input to the deepest map goes through (a dominator of the graph; a zero-padded or cropped map stands down for
    its input). So it is never a tensor that a shortcut bypasses: ResNet's stage outputs rather than the first
    convolution of the next stage, Inception's concatenations, VGG's last convolution before each pooling,
    DenseNet's transition convolutions (before their pooling). It is the tensor that feeds the next strided layer
    (or all the branches of the next strided block), however deep into that block: pre-activation ResNets give
    the next stage's first BN-ReLU (``stage2_block1_preact_relu``), which feeds its strided shortcut and branch,
    and MobileNetV2/V3 and EfficientNet the expansion output that feeds a strided depthwise convolution, the
    tensor TensorFlow's SSDLite taps.
    """
    trunk = _trunk(model_or_name, build_args)
    if len(trunk.inputs) != 1 or len(trunk.outputs) != 1:
        raise ValueError(f"feature_extractor needs a model with one input and one output; {trunk.name!r} has "
                         f"{len(trunk.inputs)} inputs and {len(trunk.outputs)} outputs.")
    maps = _feature_maps(trunk.inputs[0], trunk.outputs[0])
    if not maps:
        raise ValueError(f"model {trunk.name!r} has no feature map with a stride above 1.")
    return keras.Model(trunk.inputs[0], {f"stride{s}": maps[s] for s in sorted(maps)}, name=f"{trunk.name}_features")


def _trunk(model_or_name, build_args):
    if isinstance(model_or_name, str):
        given = sorted(set(build_args) & set(_HEAD_ARGS))
        if given:
            raise ValueError(f"feature_extractor builds the trunk (include_top=False, pooling=None) itself; do not "
                             f"pass {', '.join(given)}.")
        return build(model_or_name, include_top=False, **build_args)
    if not isinstance(model_or_name, keras.Model):
        raise TypeError(f"model_or_name must be a registered model name (see keras_cnn.list_models()) or a "
                        f"keras.Model; received {type(model_or_name).__name__}.")
    if not has_config(model_or_name):
        if not build_args and _is_trunk(model_or_name):
            return model_or_name
        raise ValueError(f"feature_extractor needs a registered model name (keras_cnn.list_models()), a model made "
                         f"by keras_cnn.build, or a trunk (include_top=False, pooling=None) used without build "
                         f"arguments; received model {model_or_name.name!r} (no build config) with output shape "
                         f"{_output_shapes(model_or_name)}.")
    if build_args:  # another architecture or implementation: a new trunk with the model's weights
        return rebuild(model_or_name, include_top=False, pooling=None, **build_args)
    return _shared_trunk(model_or_name)


def _shared_trunk(model):
    """The trunk of a keras_cnn model over the model's own layers: the layer whose output the architecture's
    ``include_top=False`` build ends in (found by building that trunk from the model's config)."""
    if _is_trunk(model):
        return model
    config = {**model_config(model), "include_top": False, "pooling": None}
    if config.get("aux_logits"):
        config["aux_logits"] = False  # the auxiliary classifiers branch off the trunk
    last = build(**config).outputs[0]
    deepest = model.get_layer(producer(last)[0].name).output
    return keras.Model(model.inputs, deepest, name=model.name)


def _is_trunk(model):
    """One 4-D output and no classifier (``to_fcn`` models output 4-D class maps from ``predictions``)."""
    outputs = getattr(model, "outputs", None) or []
    names = {layer.name for layer in model.layers}
    return len(outputs) == 1 and len(outputs[0].shape) == 4 and "predictions" not in names


def _output_shapes(model):
    shapes = [tuple(t.shape) for t in getattr(model, "outputs", None) or []]
    return shapes[0] if len(shapes) == 1 else shapes


def _feature_maps(source, sink):
    """``{stride: tensor}``: the last cut point of each stride > 1 in the graph from ``source`` to ``sink``."""
    order, parents = _graph(source, sink)
    strides = _strides(order, parents)
    maps = {}
    for tensor in _cut_points(order, parents):
        stride = strides[id(tensor)]
        # a padded (or cropped) map only prepares the next layer's input: its input, a cut point too, stands for it
        padded = tensor is not sink and isinstance(node(tensor).operation, _RESIZING)
        if stride is not None and stride > 1 and not padded:
            maps[stride] = tensor
    if maps and maps[max(maps)] is not sink:  # strides never decrease along a path, so this is a bug
        raise AssertionError(f"the deepest map {maps[max(maps)].name!r} is not the output {sink.name!r}")
    return maps


def _graph(source, sink):
    """Tensors on some path from ``source`` to ``sink`` in topological order, and each one's parents there."""
    order, parents, state = [], {}, {}
    stack = [sink]
    while stack:  # iterative post-order: ResNet-1202 is deeper than Python's recursion limit
        tensor = stack[-1]
        key = id(tensor)
        if key not in state:
            state[key] = "open"
            inputs = [] if tensor is source else node(tensor).input_tensors
            parents[key] = list({id(t): t for t in inputs}.values())  # a tensor passed twice is one edge
            stack.extend(p for p in reversed(parents[key]) if id(p) not in state)
        else:
            stack.pop()
            if state[key] == "open":
                state[key] = "done"
                order.append(tensor)
    reached = set()
    for tensor in order:
        if tensor is source or any(id(p) in reached for p in parents[id(tensor)]):
            reached.add(id(tensor))
    if id(sink) not in reached:
        raise ValueError(f"the output {sink.name!r} does not depend on the input {source.name!r}.")
    order = [t for t in order if id(t) in reached]
    return order, {id(t): [p for p in parents[id(t)] if id(p) in reached] for t in order}


def _cut_points(order, parents):
    """Tensors that no edge jumps over in the topological ``order``: exactly the cut points, since every tensor
    lies on a source-to-sink path and a path's positions only increase."""
    position = {id(t): i for i, t in enumerate(order)}
    jumps = [0] * (len(order) + 1)
    for i, tensor in enumerate(order):
        for parent in parents[id(tensor)]:
            jumps[position[id(parent)] + 1] += 1
            jumps[i] -= 1
    covered = 0
    for i, tensor in enumerate(order):
        covered += jumps[i]
        if covered == 0:
            yield tensor


def _strides(order, parents):
    """``{id(tensor): total stride}`` along the topological ``order`` (None: no spatial grid, e.g. a global
    pool's output, which the strides of the other inputs of a layer outrank)."""
    strides = {}
    for tensor in order:
        if not parents[id(tensor)]:
            strides[id(tensor)] = 1  # the input image
            continue
        known = [(strides[id(p)], p) for p in parents[id(tensor)] if strides[id(p)] is not None]
        operation = node(tensor).operation
        if not known or len(tensor.shape) != 4 or isinstance(operation, _GLOBAL):
            strides[id(tensor)] = None
        else:
            stride, parent = max(known, key=lambda pair: pair[0])
            strides[id(tensor)] = stride * _own_stride(operation, _spatial(parent), _spatial(tensor))
    return strides


def _own_stride(operation, size_in, size_out):
    """The spatial stride of ``operation`` from the input of largest stride (size ``size_in``) to its output: its
    ``strides``, a nested model's total stride, or 1 for a layer that keeps the size (padding and cropping
    excepted)."""
    if isinstance(operation, keras.Model):
        return _model_stride(operation)
    strides = getattr(operation, "strides", None)
    known = None not in (size_in, size_out)
    if strides is not None:
        pair = (strides, strides) if isinstance(strides, int) else tuple(strides)
        if len(pair) != 2 or pair[0] != pair[1]:
            raise ValueError(f"feature_extractor supports square 2-D strides only; layer {operation.name!r} "
                             f"({type(operation).__name__}) has strides={strides!r}.")
        if known and pair[0] > 1 and any(o > i for o, i in zip(size_out, size_in)):
            raise ValueError(f"layer {operation.name!r} ({type(operation).__name__}) enlarges the map from "
                             f"{size_in} to {size_out}: upsampling is not supported.")
        return int(pair[0])
    if not known or size_in == size_out or isinstance(operation, _RESIZING):
        return 1
    raise ValueError(f"feature_extractor cannot tell the stride of layer {operation.name!r} "
                     f"({type(operation).__name__}): it changes the spatial size from {size_in} to {size_out} "
                     f"and has no `strides` attribute; give it one or teach keras_cnn.features about it.")


def _spatial(tensor):
    height, width = tensor.shape[1:3]
    return None if height is None or width is None else (height, width)


def _model_stride(model):
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"nested model {model.name!r} must have one input and one output.")
    return _strides(*_graph(model.inputs[0], model.outputs[0]))[id(model.outputs[0])] or 1
