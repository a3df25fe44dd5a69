"""What funnel's calls return: numpy arrays in small dataclasses."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass(slots=True, eq=False)
class Recommendations:
    """Items best first: `keys` (object array of str), `indices` (int64 catalogue rows), `scores` (float32).

    From Model.retrieve the arrays are [k]; from Model.retrieve_batch they are [users, k], one row per user
    (a row with fewer items than k is padded with None, -1 and NaN).
    """

    keys: np.ndarray
    indices: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def to_frame(self):
        """A pandas DataFrame with columns key, index, score (and user, the row, for a batch)."""
        import pandas as pd

        if self.keys.ndim == 1:
            return pd.DataFrame({"key": self.keys, "index": self.indices, "score": self.scores})
        users, k = self.keys.shape
        frame = pd.DataFrame({"user": np.repeat(np.arange(users), k), "rank": np.tile(np.arange(k), users),
                              "key": self.keys.ravel(), "index": self.indices.ravel(), "score": self.scores.ravel()})
        return frame[frame["index"] >= 0].reset_index(drop=True)


@dataclass(slots=True, frozen=True)
class StageReport:
    """One stage of a cascade call: items it scored and passed on, and its time."""

    stage: str  # "retrieval", "pre_ranking" or "ranking"
    scored: int
    kept: int
    milliseconds: float


@dataclass(slots=True, eq=False)
class CascadeResult:
    """Model.recommend's answer: the final items best first, each stage's report, the whole call's time."""

    keys: np.ndarray  # object array of str
    scores: np.ndarray  # float32: the last stage's (a click probability after ranking)
    retrieval_scores: np.ndarray  # float32: NaN when the file has no retrieval stage
    stages: list
    milliseconds: float

    def __len__(self) -> int:
        return len(self.keys)

    def timings(self) -> dict:
        """Milliseconds per stage, and "total"."""
        out = {s.stage: s.milliseconds for s in self.stages}
        out["total"] = self.milliseconds
        return out


@dataclass(eq=False)
class TrainResult:
    """What a training call returns.

    model_path: where the model was written (None when `out` was not given: then `model` holds it in memory).
    history: one dict per epoch (loss, samples/s, validation metrics, ...); history_frame() as a DataFrame.
    test: the chosen epoch's test metrics. details: everything else the trainer reported.
    """

    model_path: Optional[str]
    history: list
    test: dict
    best_epoch: int
    samples_per_second: float
    train_seconds: float
    config: dict
    dataset: dict
    details: dict = field(default_factory=dict)
    model_bytes: Optional[bytes] = field(default=None, repr=False)
    _model: Any = field(default=None, repr=False)

    @property
    def model(self):
        """The trained model, loaded through the SDK (from model_path, or from memory)."""
        if self._model is None:
            from ._funnel import Model

            self._model = Model.load(self.model_bytes if self.model_path is None else self.model_path)
        return self._model

    def history_frame(self):
        """The metrics history as a pandas DataFrame, one row per epoch, nested metrics flattened (validation.recall@10, ...)."""
        import pandas as pd

        return pd.json_normalize(self.history)
