"""Per-family upstream checkpoints (torchvision, timm, keras.applications): importing registers them."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
