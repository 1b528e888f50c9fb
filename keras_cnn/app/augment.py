"""Training-time augmentation as TensorFlow ops in the ``tf.data`` pipeline (never inside the saved model).

Per image, with stateless ops seeded from ``tf.data.Dataset.random`` so a run is reproducible:
random crop (AlexNet: a random ``input_size`` crop of the image resized to ``resize``), scale jittering (VGG:
the image rescaled to a random side S in [S_min, S_max], then a random crop), horizontal flip, and PCA colour
noise (AlexNet: add sum_i alpha_i * lambda_i * p_i to every pixel, alpha_i ~ N(0, std), with the eigenvalues
lambda_i and eigenvectors p_i of the training pixels' channel covariance). Per batch: small random translations
and rotations (Keras preprocessing layers used as ops), the digits recipe.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Recipe:
    crop: bool = False  # random crop of input_size out of the stored (resized) image
    scale_jitter: tuple = None  # (S_min, S_max): per-image side before the random crop
    flip: bool = False
    pca_noise: float = 0.0  # std of alpha
    translate: float = 0.0  # fraction of height / width
    rotate: float = 0.0  # fraction of a full turn
    pca: tuple = None  # (eigenvalues, eigenvectors) of the training pixels, set by with_pca

    @property
    def per_image(self):
        return self.crop or self.scale_jitter is not None or self.flip or self.pca_noise > 0

    def with_pca(self, images, sample=2000):
        """The recipe with the eigen-decomposition of the channel covariance of (a sample of) ``images``."""
        if self.pca_noise <= 0:
            return self
        pixels = np.asarray(images[:sample], dtype="float64").reshape(-1, images.shape[-1])
        values, vectors = np.linalg.eigh(np.atleast_2d(np.cov(pixels, rowvar=False)))
        return dataclasses.replace(self, pca=(np.clip(values, 0, None).astype("float32"),
                                              vectors.astype("float32")))


def per_image(recipe, input_size):
    """``fn(image, seed) -> image`` applying crop / scale jitter, flip and PCA noise."""
    import tensorflow as tf

    def augment(image, seed):
        seeds = tf.random.experimental.stateless_split(seed, 4)
        if recipe.scale_jitter is not None:
            low, high = recipe.scale_jitter
            side = tf.random.stateless_uniform((), seeds[0], low, high + 1, dtype=tf.int32)
            image = tf.image.resize(image, tf.stack([side, side]), antialias=True)
        if recipe.crop or recipe.scale_jitter is not None:
            image = tf.image.stateless_random_crop(image, (*input_size, image.shape[-1]), seeds[1])
        if recipe.flip:
            image = tf.image.stateless_random_flip_left_right(image, seeds[2])
        if recipe.pca_noise > 0:
            values, vectors = recipe.pca
            alpha = tf.random.stateless_normal(values.shape, seeds[3], stddev=recipe.pca_noise)
            image = image + tf.linalg.matvec(tf.constant(vectors), alpha * tf.constant(values))
        return image

    return augment


def per_batch(recipe, seed):
    """Random translation and rotation of a batch, or None when the recipe has neither."""
    if not (recipe.translate or recipe.rotate):
        return None
    import keras

    layers = []  # float32 whatever the mixed-precision policy: augmentation is input preparation
    if recipe.translate:
        layers.append(keras.layers.RandomTranslation(recipe.translate, recipe.translate, fill_mode="constant",
                                                     seed=seed, dtype="float32"))
    if recipe.rotate:
        layers.append(keras.layers.RandomRotation(recipe.rotate, fill_mode="constant", seed=seed, dtype="float32"))
    return keras.Sequential(layers)
