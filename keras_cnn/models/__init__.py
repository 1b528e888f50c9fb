"""Model families; importing this package registers every model."""

from keras_cnn.models import classic  # noqa: F401
