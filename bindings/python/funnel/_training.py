"""funnel.train, funnel.train_ranker and funnel.autofas: the trainer's loops (the CLI's), from Python."""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _funnel
from ._data import Dataset, column_spec
from ._results import TrainResult

Progress = Union[str, None, Callable[[dict], Any]]


class TqdmProgress:
    """A tqdm bar per stage and epoch (steps, running loss, samples/s): the default progress where tqdm is installed."""

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._bar = None
        self._at: tuple = ()

    def __call__(self, event: dict) -> None:
        at = (event["stage"], event["epoch"])
        if at != self._at:
            self.close()
            self._at = at
            self._bar = self._tqdm(total=event["steps"], desc=f"{event['stage']} epoch {event['epoch']}/{event['epochs']}",
                                   unit="step", leave=False)
        self._bar.update(event["step"] - self._bar.n)
        postfix = {"loss": f"{event['loss']:.4f}"}
        if event["samples_per_second"] == event["samples_per_second"]:  # NaN during the AutoFAS search
            postfix["samples/s"] = f"{event['samples_per_second']:.0f}"
        self._bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _progress(progress: Progress):
    if progress == "auto":
        try:
            return TqdmProgress()
        except ImportError:
            return None
    if progress is None or callable(progress):
        return progress
    raise TypeError("progress: expected 'auto', None, or a callable taking one dict")


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"config: {type(value).__name__} is not a JSON value")


def _config_text(config: Union[None, dict, str, os.PathLike]) -> str:
    if config is None:
        return "{}"
    if isinstance(config, (str, os.PathLike)):
        with open(config, encoding="utf-8") as f:
            config = json.load(f)
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict (or the path of a JSON config), not {type(config).__name__}")
    try:
        return json.dumps(config, allow_nan=False, default=_json_value)
    except ValueError as e:
        raise ValueError(f"config: {e} (NaN and infinities are not config values)") from None


def _data(data: Any) -> Union[str, dict]:
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such dataset description")
        return path
    if isinstance(data, Dataset):
        return column_spec(data)
    if isinstance(data, dict) or (hasattr(data, "columns") and hasattr(data, "iloc")):
        return column_spec(Dataset(interactions=data))
    raise TypeError("data: expected a dataset description's path, a funnel.Dataset, or a DataFrame of interactions, "
                    f"not {type(data).__name__}")


def _out(out: Union[None, str, os.PathLike]) -> str:
    return "" if out is None else os.fspath(out)


def _run(call: Callable[..., dict], progress: Progress, on_epoch: Optional[Callable[[dict], Any]], *args: Any) -> dict:
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError("on_epoch: expected a callable taking one dict")
    callback = _progress(progress)
    try:
        return call(*args, callback, on_epoch)
    finally:
        if isinstance(callback, TqdmProgress):
            callback.close()


def _result(raw: dict, history_key: str = "history", test_key: str = "test", source: Optional[dict] = None) -> TrainResult:
    source = raw if source is None else source
    known = {"model_path", "model_bytes", "history", "test", "best_epoch", "samples_per_second", "train_seconds", "config", "dataset"}
    return TrainResult(
        model_path=raw["model_path"],
        history=source[history_key],
        test=source[test_key],
        best_epoch=source["best_epoch"],
        samples_per_second=source["samples_per_second"],
        train_seconds=source["train_seconds"],
        config=raw["config"],
        dataset=raw["dataset"],
        details={k: v for k, v in raw.items() if k not in known},
        model_bytes=raw.get("model_bytes"),
    )


def train(data: Any, config: Union[None, dict, str, os.PathLike] = None, out: Union[None, str, os.PathLike] = None, *,
          data_root: Optional[str] = None, checkpoint: Union[None, str, os.PathLike] = None,
          resume: Union[None, str, os.PathLike] = None, progress: Progress = "auto",
          on_epoch: Optional[Callable[[dict], Any]] = None) -> TrainResult:
    """Train the two-tower retrieval model (what `funnel train` does) and export it.

    data: a dataset description's path (docs/dataset-format.md; file paths in it relative to its "root",
        or to data_root), a funnel.Dataset, or a DataFrame of interactions (columns user_id, item_id and
        optionally timestamp). Split per user, leaving the last interactions out for validation and test.
    config: the training config (docs/training.md) as a dict or a JSON file's path; missing fields keep
        their defaults, unknown fields and wrong types raise ValueError.
    out: the .funnel file to write (atomically); None keeps the model in memory (result.model).
    checkpoint: written atomically after every epoch; resume: continue from one.
    progress: "auto" (a tqdm bar where tqdm is installed), None, or a callable taking a dict (stage, epoch,
        epochs, step, steps, loss, samples_per_second), called every few steps.
    on_epoch: a callable taking each epoch's record (a dict, as in result.history).

    The GIL is released while training. Ctrl-C (KeyboardInterrupt) stops within a few steps; the last
    checkpoint written stays as it was. Returns funnel.TrainResult: model_path, history, test metrics of
    the chosen epoch (details["most_popular_test"] holds the most-popular baseline on the same users).
    Raises ValueError (bad data, naming file, line and field; bad config), funnel.TrainingError.
    """
    return _result(_run(_funnel._train_two_tower, progress, on_epoch, _data(data), data_root or "", _config_text(config), _out(out),
                        _out(checkpoint), _out(resume)))


def train_ranker(data: Any, config: Union[None, dict, str, os.PathLike] = None, out: Union[None, str, os.PathLike] = None, *,
                 data_root: Optional[str] = None, checkpoint: Union[None, str, os.PathLike] = None,
                 resume: Union[None, str, os.PathLike] = None, progress: Progress = "auto",
                 on_epoch: Optional[Callable[[dict], Any]] = None) -> TrainResult:
    """Train the ranking stage (DNN or CAN; what `funnel train-ranker` does) and export it.

    data as for funnel.train (instances are built by the DIN protocol; a description with "format": "dien"
    is read as it is). config: the ranking config (docs/ranking.md), e.g. {"model": "can", "epochs": 2}.
    The result's test holds AUC, GAUC and LogLoss of the chosen epoch. checkpoint / resume, progress, on_epoch
    and Ctrl-C as for funnel.train.
    """
    return _result(_run(_funnel._train_ranker, progress, on_epoch, _data(data), data_root or "", _config_text(config), _out(out),
                        _out(checkpoint), _out(resume)))


def autofas(data: Any, config: Union[None, dict, str, os.PathLike] = None, out: Union[None, str, os.PathLike] = None, *,
            latency_table: Union[None, dict, str, os.PathLike] = None, data_root: Optional[str] = None,
            checkpoint: Union[None, str, os.PathLike] = None, resume: Union[None, str, os.PathLike] = None,
            progress: Progress = "auto", on_epoch: Optional[Callable[[dict], Any]] = None) -> TrainResult:
    """Train a ranking teacher, search its pre-ranking student with AutoFAS, retrain the student with
    distillation, and export both stages in one file (what `funnel autofas` does; docs/pre-ranking.md).

    latency_table: the dense-layer latencies of the deployment target: a dict (funnel.bench_layers() measures
        this machine's) or a JSON file's path; None reads config["latency_table"].
    The result's test and history are the student's; details holds "teacher", "search" and "student_config".
    checkpoint / resume cover the teacher's and the student's epochs (one file), as `funnel autofas --checkpoint`.
    """
    if isinstance(latency_table, (str, os.PathLike)):
        with open(latency_table, encoding="utf-8") as f:
            latency_table = json.load(f)
    latency_text = "" if latency_table is None else json.dumps(latency_table)
    raw = _run(_funnel._autofas, progress, on_epoch, _data(data), data_root or "", _config_text(config), latency_text, _out(out),
               _out(checkpoint), _out(resume))
    return _result(raw, source=raw["student"])
