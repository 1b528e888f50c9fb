"""Register keras_cnn's serializable classes with Keras as soon as Keras is imported.

``import keras_cnn`` stays light (no TensorFlow), yet ``keras.saving.load_model("x.keras")`` after it must find
``keras_cnn>CNNModel``, ``keras_cnn>LocalResponseNormalization`` and the other registered classes: Keras imports
a module to find a class only for its own packages, so registration has to happen before the first load. When
Keras is already imported this registers at once; otherwise a one-shot import hook registers right after the
``keras`` package finishes importing, whoever imports it.
"""

import importlib
import importlib.abc
import pkgutil
import sys


def register():
    """Import every module that registers a class with ``keras.saving.register_keras_serializable``."""
    import keras_cnn.layers
    import keras_cnn.model  # noqa: F401  (CNNModel)

    for info in pkgutil.iter_modules(keras_cnn.layers.__path__):
        importlib.import_module(f"keras_cnn.layers.{info.name}")


def install():
    """Register now if Keras is loaded, else when it is (idempotent)."""
    if "keras" in sys.modules:
        register()
    elif not any(isinstance(finder, _KerasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasFinder())


class _KerasFinder(importlib.abc.MetaPathFinder):
    """Finds ``keras`` through the other finders and wraps its loader so :func:`register` runs after it."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from finding this finder again
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ThenRegister(spec.loader)
                return spec
        return None


class _ThenRegister(importlib.abc.Loader):
    """Keras's own loader, then :func:`register` once the package is complete."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        register()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the wrapped loader
        return getattr(self._loader, name)
