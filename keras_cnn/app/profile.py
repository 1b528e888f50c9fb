"""Per-layer profile of a registered model: output shape, parameters, MACs and activation memory (batch 1).

Conventions: ``keras_cnn.profile`` (MACs of convolutions and dense layers only, bias not counted). Examples:
``keras-cnn profile --model resnet50``, ``keras-cnn profile --model resnet50 --json``,
``keras-cnn profile --model densenet121 --option memory_efficient=True --image-size 64``.
"""

import argparse

from keras_cnn.app import flags


def parser():
    p = argparse.ArgumentParser(prog="keras-cnn profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=flags.model_name, required=True,
                   help="registered model name (keras-cnn list)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="model option (repeatable)")
    p.add_argument("--classes", type=flags.integer(1), default=1000, help="number of classes (default: 1000)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--input-size", nargs=3, type=flags.integer(1), metavar=("H", "W", "C"),
                      help="input height, width and channels (default: the model's)")
    size.add_argument("--image-size", type=flags.integer(1), metavar="N",
                      help="input height and width N (channels: the model's)")
    p.add_argument("--json", action="store_true", help="print the profile as JSON instead of the table")
    return p


def main(argv=None):
    return run(parser().parse_args(argv))


def run(args):
    """Build the model as ``args`` says, print its profile; returns the ``keras_cnn.profile.Profile``."""
    import keras_cnn
    from keras_cnn.cli import parse_options
    from keras_cnn.profile import profile

    height, width, channels = keras_cnn.registry.get(args.model).default_input
    if args.input_size:
        height, width, channels = args.input_size
    elif args.image_size:
        height = width = args.image_size
    options = parse_options(args.option)
    try:
        result = profile(args.model, **{"input_shape": (height, width, channels), "classes": args.classes, **options})
    except (ValueError, TypeError) as error:
        if not options:
            raise
        raise type(error)(f"--option {', '.join(args.option)}: {error}") from error
    print(result.to_json(indent=2) if args.json else result.table())
    return result
