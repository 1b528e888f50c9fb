"""The ``keras-cnn train | evaluate | predict | export | profile | convert-weights | list`` commands (``apps/*.py``
are thin wrappers around them).

One module per command (``train``, ``evaluate``, ``predict``, ``export``, ``profile``, ``convert_weights``,
``list``), each
with ``parser()``, ``run(args)`` and ``main(argv)``; the pieces they share: ``flags`` (argument types and checks),
``sources`` (digits, folder:, tfds: as ``tf.data``), ``preprocessing`` (the record saved with every model),
``augment`` and ``pipeline`` (training and evaluation input), ``recipes`` (optimizers, schedules, losses),
``fit_callbacks``, ``distribute`` (strategies and the multi-worker training loop), ``train_config``
(``TrainConfig``: a run's settings, from the flags or from Python), ``train_summary`` (the end of a run),
``runners`` (.keras files and exports as one predict function) and ``report`` (tables and the JSON report).
Files are written whole, and an export's files published together, by :mod:`keras_cnn._files`.
"""
