"""LiteRT model metadata embedded in keras_cnn's ``.tflite`` files, so task-style classifiers need no sidecar.

The format is the TFLite metadata schema (``metadata_schema.fbs``) that ``tflite-support`` defined and MediaPipe
now maintains: a ``TFLITE_METADATA`` buffer in the model (name, description, version; the input image's
normalisation as a ``NormalizationOptions`` process unit; the output's labels as an associated
``TENSOR_AXIS_LABELS`` file, zipped onto the end of the flatbuffer). It is written with MediaPipe's metadata
writer (``mediapipe.tasks.python.metadata.metadata_writers``), read by MediaPipe's ``ImageClassifier`` and
``MetadataDisplayer`` and by LiteRT's Android metadata tools. ``tflite-support`` itself cannot be installed beside
TensorFlow 2.21 (it pins protobuf < 4).

MediaPipe is optional (the ``metadata`` extra). Without it the file is written without metadata, with one
:class:`MetadataWarning` per process; the sidecar ``<file>.json`` and ``<stem>.labels.txt`` are written either
way and stay the full contract (quantization parameters, verification figures).
"""

import importlib.util
import math
import sys
import threading
import types
import warnings

_MISSING_BINDING = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
_warned = False
_modules = []  # writer_modules' one result


class MetadataWarning(UserWarning):
    """A ``.tflite`` file was written without embedded metadata (MediaPipe is not installed)."""


def writer_modules():
    """``(metadata, metadata_writer, metadata_info, schema, metadata_schema)`` of MediaPipe, or None when it is
    not installed."""
    if not _modules:
        # mediapipe keeps the exception of its failed sounddevice import (no PortAudio library) in
        # audio_record.sd_error, and with its traceback every frame that was importing: import it from a thread of
        # its own, so those are not the caller's frames (with their model bytes)
        thread = threading.Thread(target=lambda: _modules.append(_import_modules()), daemon=True)
        thread.start()
        thread.join()
    return _modules[0]


def _import_modules():
    try:
        _provide_version_binding()
        from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_schema
        from mediapipe.tasks.metadata import schema_py_generated as schema
        from mediapipe.tasks.python.metadata import metadata
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, metadata_writer
    except ImportError:
        return None
    return metadata, metadata_writer, metadata_info, schema, metadata_schema


def _provide_version_binding():
    """Stand in for the one native function MediaPipe's pip wheels (0.10.30 to at least 1.2.3) no longer ship.

    ``mediapipe.tasks.python.metadata`` imports ``_pywrap_metadata_version`` (a pybind module that 0.10.21 had)
    for ``GetMinimumMetadataParserVersion``, so the module fails to import although the rest of the writer is
    pure Python. When it is missing, this registers :func:`minimum_parser_version` under its name."""
    import mediapipe.tasks  # noqa: F401  (not installed: ImportError for the caller)

    parts, parent = _MISSING_BINDING.split("."), None
    if _importable(parts):
        return
    for depth in range(3, len(parts) + 1):  # mediapipe.tasks.cc, .metadata, .python, ._pywrap_metadata_version
        name = ".".join(parts[:depth])
        module = sys.modules.get(name) or types.ModuleType(name)
        if depth < len(parts):
            module.__path__ = []  # a package, so the next level imports from it
        sys.modules[name] = module
        if parent is not None:
            setattr(parent, parts[depth - 1], module)
        parent = module
    parent.GetMinimumMetadataParserVersion = minimum_parser_version


def _importable(parts):
    # find_spec level by level: a failed import would keep this call's frames alive in its traceback
    for depth in range(3, len(parts) + 1):
        name = ".".join(parts[:depth])
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            return False
    return True


def minimum_parser_version(buffer):
    """The oldest metadata parser that reads every field of a ``ModelMetadata`` flatbuffer, as ``"1.x.y"``.

    The rule of MediaPipe's ``metadata_version.cc`` (each field added after schema 1.0.0 raises the minimum to
    the version that added it)."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    root = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(bytes(buffer), 0))
    found = {(1, 0, 0)}
    _files_versions(root.associatedFiles, found, fb)
    for subgraph in root.subgraphMetadata or ():
        for tensor in (subgraph.inputTensorMetadata or []) + (subgraph.outputTensorMetadata or []):
            _files_versions(tensor.associatedFiles, found, fb)
            _units_versions(tensor.processUnits, found, fb)
            content = tensor.content
            if content is not None and content.contentPropertiesType == fb.ContentProperties.AudioProperties:
                found.add((1, 3, 0))
        _files_versions(subgraph.associatedFiles, found, fb)
        for units in (subgraph.inputProcessUnits, subgraph.outputProcessUnits):
            if units is not None:
                found.add((1, 1, 0))
                _units_versions(units, found, fb)
        if subgraph.inputTensorGroups is not None or subgraph.outputTensorGroups is not None:
            found.add((1, 2, 0))
        if subgraph.customMetadata is not None:
            found.add((1, 5, 0))
    return ".".join(map(str, max(found)))


def _files_versions(files, found, fb):
    for file in files or ():
        if file.type == fb.AssociatedFileType.VOCABULARY:
            found.add((1, 0, 1))
        if file.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
            found.add((1, 4, 0))
        if file.version is not None:
            found.add((1, 4, 1))


def _units_versions(units, found, fb):
    options = fb.ProcessUnitOptions
    for unit in units or ():
        if unit.optionsType in (options.BertTokenizerOptions, options.SentencePieceTokenizerOptions):
            found.add((1, 1, 0))
        if unit.optionsType == options.RegexTokenizerOptions:
            found.add((1, 2, 1))


def embed(flatbuffer, *, name, description, version, preprocessing, class_names, output):
    """``flatbuffer`` with the model's metadata, or unchanged (one :class:`MetadataWarning`) without MediaPipe.

    ``preprocessing`` is the sidecar's (``{"scale": s, "offset": o}``, a number or one per channel: the model's
    input is ``byte * s + o``; offset 0 when absent); without a scale the normalisation is left out.
    ``class_names`` become the labels file (None: none); ``output`` is :func:`output_description`'s."""
    modules = writer_modules()
    if modules is None:
        _warn_once()
        return flatbuffer
    _, metadata_writer, metadata_info, schema, metadata_schema = modules
    tensor = _input_tensor(flatbuffer, schema)
    mean, std = normalization(preprocessing, tensor) or (None, None)
    channels = tensor.ShapeSignatureAsNumpy()[-1] if tensor.ShapeSignatureLength() else tensor.ShapeAsNumpy()[-1]
    colour = metadata_schema.ColorSpaceType.GRAYSCALE if channels == 1 else metadata_schema.ColorSpaceType.RGB
    writer = metadata_writer.MetadataWriter.create(bytearray(flatbuffer))
    writer.add_image_input(mean, std, colour, name="image", description=_input_description(mean, std))
    labels = metadata_writer.Labels().add(list(class_names), exported_filename="labels.txt") \
        if class_names else None
    writer.add_classification_output(labels, name=output["name"], description=output["description"])
    # add_general_info takes no version; the record it fills does
    writer._general_md = metadata_info.GeneralMd(name=name, version=version, description=description,
                                                 author="keras_cnn")
    model, _ = writer.populate()
    return bytes(model)


def normalization(preprocessing, tensor):
    """``(mean, std)`` per channel such that ``(byte - mean) / std`` is the file's input for an 8-bit pixel
    ``byte``, or None when ``preprocessing`` does not say how pixels become the model's input.

    The model's input is ``x = byte * scale + offset`` (the sidecar's ``preprocessing``). A float input takes
    ``x`` itself: ``mean = -offset / scale``, ``std = 1 / scale``. An integer input (``io_dtype`` int8/uint8)
    takes ``q = x / s + z`` (its scale ``s`` and zero point ``z``): ``mean = -(offset + z * s) / scale``,
    ``std = s / scale`` (a uint8 input of scale 1/255 and zero point 0 for a [0, 1] model: mean 0, std 1)."""
    if not isinstance(preprocessing, dict) or "scale" not in preprocessing:
        return None
    scales, offsets = _per_channel(preprocessing["scale"]), _per_channel(preprocessing.get("offset", 0.0))
    if scales is None or offsets is None or 0 in scales:
        return None
    if len(scales) != len(offsets):  # one value broadcasts over the channels
        scales, offsets = scales * len(offsets) if len(scales) == 1 else scales, \
            offsets * len(scales) if len(offsets) == 1 else offsets
        if len(scales) != len(offsets):
            return None
    quantization = tensor.Quantization()
    if quantization is not None and quantization.ScaleLength():
        step, zero_point = float(quantization.Scale(0)), float(quantization.ZeroPoint(0))
    else:
        step, zero_point = 1.0, 0.0
    mean = [-(o + zero_point * step) / s + 0.0 for s, o in zip(scales, offsets)]  # + 0.0: no "-0.0"
    std = [step / s for s in scales]
    return mean, std


def _per_channel(value):
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                             for v in values):
        return None
    return [float(v) for v in values]


def _input_tensor(flatbuffer, schema):
    model = schema.Model.GetRootAs(bytes(flatbuffer), 0)
    subgraph = model.Subgraphs(0)
    return subgraph.Tensors(subgraph.Inputs(0))


def _input_description(mean, std):
    if mean is None:
        return "Image batch (batch, height, width, channels); its preprocessing is not recorded."
    return ("Image batch (batch, height, width, channels). Each 8-bit pixel p enters as (p - mean) / std per "
            "channel, as NormalizationOptions gives them.")


def output_description(output_name, activation):
    """The output tensor's metadata: ``{"name", "description"}`` for ``probabilities`` (softmax: one class;
    sigmoid: independent per class) or ``logits`` (unnormalised: a classifier's top class is right, its scores
    are logits until a softmax)."""
    if output_name == "probabilities":
        kind = "independent per-class probabilities (sigmoid, multi-label)" if activation == "sigmoid" \
            else "class probabilities (softmax)"
    else:
        kind = "logits (no softmax in the model: apply one for probabilities)"
    return {"name": output_name, "description": f"Scores per class: {kind}."}


def _warn_once():
    global _warned
    if _warned:
        return
    _warned = True
    frame, level = sys._getframe(1), 2  # attributed to the first caller outside keras_cnn: the user's line
    while frame is not None and frame.f_globals.get("__name__", "").startswith("keras_cnn"):
        frame, level = frame.f_back, level + 1
    warnings.warn("mediapipe is not installed, so the .tflite file has no embedded metadata (normalisation, "
                  "labels); its .json sidecar and labels file describe it. pip install 'keras_cnn[metadata]' "
                  "to embed it.", MetadataWarning, stacklevel=level)
