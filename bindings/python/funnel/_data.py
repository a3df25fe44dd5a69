"""Interactions and features from pandas DataFrames or numpy arrays, handed to the trainer as columns of
text: the text a delimited file would hold in each field, so the trainer builds the same tables as from a
dataset description's files (train/data/column_source.hpp), and no file is written on the way."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np


@dataclass
class Dataset:
    """A dataset in memory: interactions, and optionally user and item features.

    interactions: a DataFrame (or a dict of column name -> array) with one row per interaction, oldest first
        unless `timestamp` names an integer column.
    user, item: the interactions' columns of user and item keys. timestamp: a column of integers, or None
        (then a column named "timestamp" is used where there is one, else the row order is the time order).
    users, items: DataFrames (or dicts of arrays) of features, one row per user or item, keyed by the column
        `user_key` / `item_key` (default: the same name as `user` / `item`). Without them the entity has one
        feature, "user_id" / "item_id", from its keys.
    user_features, item_features: feature definitions as in a dataset description (docs/dataset-format.md):
        dicts with "name", "kind" ("categorical", "multi_categorical", "dense"), "boundaries", "prefix",
        "hash_buckets", "separator", ..., whose "column" is a column name (default: the feature's name); a
        plain str is a categorical feature of that column. Default: every column, float columns dense,
        columns of lists multi-valued, the rest categorical.
    """

    interactions: Any
    users: Any = None
    items: Any = None
    user: str = "user_id"
    item: str = "item_id"
    timestamp: Optional[str] = None
    user_key: Optional[str] = None
    item_key: Optional[str] = None
    user_features: Optional[Sequence[Any]] = None
    item_features: Optional[Sequence[Any]] = None
    name: str = "in-memory"


def _columns(table: Any, what: str) -> tuple[list[str], list[np.ndarray]]:
    if hasattr(table, "columns") and hasattr(table, "iloc"):  # a pandas DataFrame
        names = [str(c) for c in table.columns]
        return names, [table[c].to_numpy() for c in table.columns]
    if isinstance(table, dict):
        names = [str(c) for c in table]
        return names, [np.asarray(v) if not isinstance(v, np.ndarray) else v for v in table.values()]
    raise TypeError(f"{what}: expected a pandas DataFrame or a dict of column name -> array, not {type(table).__name__}")


def _number_text(x: float, where: str) -> str:
    if not math.isfinite(x):
        raise ValueError(f"{where}: {x} is not a feature value")
    # As funnel::number_to_key and a CSV writer would have it: integers without a decimal point, other
    # values in the shortest form that reads back as the same double.
    if x.is_integer() and abs(x) < 9.0e15:
        return str(int(x))
    return repr(x)


def _value_text(v: Any, where: str, separator: str) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{where}: a bool is not a feature value")
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return _number_text(float(v), where)
    if isinstance(v, (list, tuple, np.ndarray)):
        return separator.join(_value_text(x, where, separator) for x in v)
    if v is None:
        raise ValueError(f"{where}: a missing value (None) is not a feature value")
    raise TypeError(f"{where}: {type(v).__name__} is not a feature value (str, a number, or a list)")


def _is_missing(v: Any) -> bool:
    """None, NaN, pandas.NA or pandas.NaT: what pandas.read_csv makes of an empty field."""
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    return type(v).__name__ in ("NAType", "NaTType")


def _column_text(values: np.ndarray, table: str, column: str, separator: str = "|", missing: bool = False) -> list[str]:
    """The column's fields as a delimited file would hold them. With `missing` (feature columns), a missing
    value (see _is_missing) is an empty field, which the trainer reads as a CSV reader's empty field; keys and
    timestamps must have a value."""
    kind = values.dtype.kind
    if kind in "iu":
        return values.astype(str).tolist()
    if kind == "f":
        bad = np.flatnonzero(~np.isfinite(values) & ~(missing & np.isnan(values)))
        if bad.size:
            raise ValueError(f"{table} row {bad[0]}: column '{column}': {values[bad[0]]} is not a feature value")
        return ["" if x != x else _number_text(x, "") for x in values.tolist()]
    if kind == "U":
        return values.tolist()
    if kind == "b":
        raise TypeError(f"{table}: column '{column}' holds bools, which are not feature values (use str or int)")
    return ["" if missing and _is_missing(v) else _value_text(v, f"{table} row {r}: column '{column}'", separator)
            for r, v in enumerate(values.tolist())]


def _infer_feature(name: str, values: np.ndarray) -> dict:
    if values.dtype.kind == "f":
        return {"name": name, "kind": "dense"}
    if values.dtype.kind == "O" and len(values) and isinstance(values[0], (list, tuple, np.ndarray)):
        return {"name": name, "kind": "multi_categorical", "separator": "|"}
    return {"name": name}


def _entity(table: Any, key: str, features: Optional[Sequence[Any]], what: str) -> dict:
    names, arrays = _columns(table, what)
    index = {n: i for i, n in enumerate(names)}

    def column_index(column: Any, where: str) -> int:
        if isinstance(column, (int, np.integer)) and not isinstance(column, bool):
            return int(column)
        if isinstance(column, str) and column in index:
            return index[column]
        raise ValueError(f"{where}: no column {column!r} in {what} (it has {', '.join(names)})")

    if features is None:
        features = [_infer_feature(n, a) for n, a in zip(names, arrays)]
    if isinstance(features, (str, dict)) or not isinstance(features, Sequence):
        raise TypeError(f"{what} features: expected a list of feature definitions (dicts or column names)")
    defs = []
    separators: dict[int, str] = {}
    for feature in features:
        d = {"name": feature} if isinstance(feature, str) else dict(feature) if isinstance(feature, dict) else None
        if d is None or not isinstance(d.get("name"), str):
            raise TypeError(f"{what} features: each is a column name or a dict with a 'name', not {feature!r}")
        here = f"{what} feature '{d['name']}'"
        if "flags" in d:
            flags = dict(d["flags"])
            flags["first_column"] = column_index(flags.get("first_column"), here)
            d["flags"] = flags
        else:
            d["column"] = column_index(d.get("column", d["name"]), here)
            if d.get("kind") == "multi_categorical":
                d.setdefault("separator", "|")
                separators[d["column"]] = d["separator"]
        defs.append(d)
    key_column = column_index(key, f"{what} key")
    return {
        "names": names,
        "values": [_column_text(a, what, n, separators.get(i, "|"), missing=i != key_column)
                   for i, (n, a) in enumerate(zip(names, arrays))],
        "key": key_column,
        "features": json.dumps(defs),
    }


def column_spec(data: Dataset) -> dict:
    """The dict funnel._funnel's training calls read for data in memory."""
    names, arrays = _columns(data.interactions, "interactions")
    timestamp = data.timestamp if data.timestamp is not None else ("timestamp" if "timestamp" in names else None)
    wanted = [("user", data.user), ("item", data.item)] + ([("timestamp", timestamp)] if timestamp is not None else [])
    for role, column in wanted:
        if column not in names:
            raise ValueError(f"interactions: no column '{column}' for the {role} (it has {', '.join(names)})")
    picked = [column for _, column in wanted]
    interactions = {
        "names": picked,
        "values": [_column_text(arrays[names.index(c)], "interactions", c) for c in picked],
        "user": 0,
        "item": 1,
        "timestamp": 2 if timestamp is not None else -1,
    }
    return {
        "name": data.name,
        "interactions": interactions,
        "users": None if data.users is None else _entity(data.users, data.user_key or data.user, data.user_features, "users"),
        "items": None if data.items is None else _entity(data.items, data.item_key or data.item, data.item_features, "items"),
    }
