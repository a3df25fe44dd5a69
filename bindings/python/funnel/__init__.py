"""Funnel from Python: train the whole recommendation funnel and serve the file it writes.

    import funnel
    result = funnel.train(interactions_df, config={"epochs": 5}, out="model.funnel")
    model = funnel.Model.load("model.funnel")
    model.retrieve({"user_id": "u42"}, k=10).keys

Serving (funnel.Model) is the C++ SDK; training runs the native trainer. Both release the GIL while they
work. Errors carry the SDK's and the trainer's messages: ValueError for bad arguments, data and configs,
KeyError for unknown item keys, FileNotFoundError, funnel.CorruptModelError for damaged files,
funnel.TrainingError when training cannot go on. docs/python.md describes the whole API.
"""
from ._funnel import (
    CorruptModelError,
    FunnelError,
    Model,
    TrainingError,
    UnsupportedModelError,
    bench_layers,
    generate,
    kernels,
)
from ._data import Dataset
from ._results import CascadeResult, Recommendations, StageReport, TrainResult
from ._training import autofas, train, train_ranker

__version__ = "0.1.0"

# Shown as funnel.Model (and funnel.CorruptModelError, ...) in reprs, tracebacks and help().
for _cls in (Model,):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "CascadeResult",
    "CorruptModelError",
    "Dataset",
    "FunnelError",
    "Model",
    "Recommendations",
    "StageReport",
    "TrainResult",
    "TrainingError",
    "UnsupportedModelError",
    "autofas",
    "bench_layers",
    "generate",
    "kernels",
    "train",
    "train_ranker",
]
