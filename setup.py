"""keras_cnn: classic image-classification CNNs for Keras 3 / TensorFlow."""

from setuptools import find_packages, setup

TENSORFLOW = ">=2.21,<2.22"
# LiteRT runs the TFLite files; tf2onnx + onnxruntime make and check the ONNX files.
DATA = ["tensorflow-datasets>=4.9,<4.10", "importlib_resources"]  # tfds 4.9 imports it without declaring it
EXPORT = ["ai-edge-litert>=2.3,<2.4", "tf2onnx>=1.17,<1.18", "onnx>=1.16", "onnxruntime>=1.31,<1.32"]
# LiteRT model metadata in every .tflite (labels, normalisation) with MediaPipe's writer; <1.3 because
# keras_cnn._tflite_metadata stands in for a native module the 1.2 wheels leave out
METADATA = ["mediapipe>=1.2.3,<1.3"]

setup(
    name="keras_cnn",
    version="0.3.0",
    description="The classic image-classification CNNs for Keras 3, faithful to their papers and deployable.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_cnn", "keras_cnn.*"]),
    install_requires=[
        "keras>=3.15,<3.16",
        "numpy>=1.26",
        "scikit-learn>=1.4",  # the bundled handwritten-digits dataset
    ],
    entry_points={"console_scripts": ["keras-cnn=keras_cnn.cli:main"]},
    extras_require={
        # TensorFlow comes as an extra because its CPU and GPU builds are different distributions.
        "cpu": [f"tensorflow-cpu{TENSORFLOW}"],
        "gpu": [f"tensorflow[and-cuda]{TENSORFLOW}"],
        "plots": ["matplotlib>=3.7"],
        "data": DATA,
        "export": EXPORT,
        "metadata": METADATA,
        # `make goldens`: the upstream libraries whose outputs the weight converters are tested against
        "reference": ["torch>=2.4", "torchvision>=0.19", "timm>=1.0"],
        # `make docs`: MkDocs and the API reference from the docstrings (read statically, without TensorFlow)
        "docs": ["mkdocs>=1.6,<2", "mkdocstrings>=1.0,<2", "mkdocstrings-python>=2.0,<3"],
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "matplotlib>=3.7", *EXPORT, *DATA, *METADATA],
    },
)
