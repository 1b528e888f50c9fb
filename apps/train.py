"""Train a keras_cnn model on the bundled handwritten digits with model.fit, report test accuracy, save it.

Example: ``python apps/train.py --model lenet5 --option activation=relu --option pool=max``. The apps issue
grows this into the full training script (other data sources, recipes, callbacks, resume).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="lenet5", help="registered model name (keras_cnn.list_models())")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="model option, repeatable (e.g. activation=relu, batch_norm=True)")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="peak Adam learning rate (cosine decay)")
    parser.add_argument("--no-augment", dest="augment", action="store_false",
                        help="disable random translation (8%%) and rotation (3%% of a turn) of training images")
    parser.add_argument("--image-size", type=int, default=None, help="input height/width (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the split and initialisation")
    parser.add_argument("--output", default="saved_models", help="folder the .keras model is written to")
    return parser.parse_args(argv)


def training_dataset(x, y, batch_size, augment, seed):
    """Shuffled, batched, optionally augmented, prefetched ``tf.data`` pipeline."""
    import keras
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(batch_size)
    if augment:
        aug = keras.Sequential([keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed),
                                keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed)])
        ds = ds.map(lambda images, labels: (aug(images, training=True), labels),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def main(argv=None):
    args = parse_args(argv)
    import keras

    import keras_cnn
    from keras_cnn import data
    from keras_cnn.cli import parse_options

    entry = keras_cnn.registry.get(args.model)
    size = args.image_size or entry.default_input[0]
    splits = data.digits(image_size=(size, size), channels=entry.default_input[2], seed=args.seed)
    keras.utils.set_random_seed(args.seed)
    model = keras_cnn.build(args.model, input_shape=splits["train"][0].shape[1:], classes=data.DIGITS_CLASSES,
                            **parse_options(args.option))
    train = training_dataset(*splits["train"], args.batch_size, args.augment, args.seed)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, args.epochs * len(train))
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train, validation_data=splits["val"], epochs=args.epochs, verbose=2)
    loss, accuracy = model.evaluate(*splits["test"], verbose=0)
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, f"{args.model}_digits.keras")
    model.save(path)
    print(f"{args.model} on digits: test accuracy {accuracy:.4f} (loss {loss:.4f}, "
          f"{len(splits['test'][1])} test images); saved {path}")
    return accuracy


if __name__ == "__main__":
    main()
