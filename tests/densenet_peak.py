"""TensorFlow's tensor peak of one DenseNet training step, plain and memory-efficient (run as a child process).

``python -m tests.densenet_peak`` prints ``{"plain": MiB, "efficient": MiB}``: for each mode, the allocator's
high-water mark during one traced forward and backward pass, less what was allocated before it (the weights).
TensorFlow keeps these statistics only in its BFC allocator, which it uses on the CPU when oneDNN is on; with
oneDNN off (TensorFlow's default on AVX2-only CPUs) the CPU allocator keeps none, so the parent starts this process
with ``TF_CPU_ALLOCATOR_USE_BFC=true``, which selects the BFC allocator whatever the oneDNN setting (it is read
when TensorFlow starts, hence the child process). tests/test_densenet.py asserts the ratio.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.spec_variants import build_variant  # noqa: E402

# DenseNet-BC with bottlenecks on 32x32, batch 16: the activations dominate the peak
ROW = {"block_config": (6, 6, 6), "growth_rate": 8, "bottleneck_width": 4}
SIZE, BATCH = 32, 16


def step_peak(memory_efficient):
    model = build_variant("densenet_bc_100", ROW, input_shape=(SIZE, SIZE, 3), memory_efficient=memory_efficient)
    images = tf.constant(np.random.default_rng(0).normal(size=(BATCH, SIZE, SIZE, 3)), tf.float32)
    labels = tf.constant(np.arange(BATCH) % 3)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(labels, model(images, training=True))
        return tape.gradient(loss, model.trainable_weights)

    step.get_concrete_function()  # trace outside the measured call, as fit does
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    step()
    return (tf.config.experimental.get_memory_info("CPU:0")["peak"] - before) / 2**20


if __name__ == "__main__":
    print(json.dumps({"plain": step_peak(False), "efficient": step_peak(True)}))
