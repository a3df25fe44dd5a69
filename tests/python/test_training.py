"""Training from Python: from a dataset description, from DataFrames (the same model as from the same data as
CSV files, byte for byte), progress and epoch callbacks, Ctrl-C with the last checkpoint kept, AutoFAS."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import funnel

QUICK = {"epochs": 1, "threads": 1, "seed": 3, "embedding_dim": 8, "hidden": [16], "output_dim": 8}
RANKER = {"epochs": 1, "threads": 1, "seed": 3, "max_history": 10, "user_features": ["age", "region"],
          "coaction": ["item_id:item_id", "category:category"]}


def test_train_from_a_description(trained, synthetic):
    assert Path(trained.model_path).is_file() and trained.model_bytes is None
    assert trained.best_epoch == 1 and len(trained.history) == 1
    epoch = trained.history[0]
    assert epoch["epoch"] == 1 and np.isfinite(epoch["loss"]) and "validation" in epoch
    assert "mrr" in trained.test and any(k.startswith("recall@") for k in trained.test)
    assert trained.samples_per_second > 0 and trained.config["epochs"] == 1 and trained.config["seed"] == 3
    assert trained.dataset["name"] == "synthetic" and trained.dataset["users"] == 150
    assert "most_popular_test" in trained.details
    model = trained.model
    assert model.has_retrieval and model.catalogue_size == trained.dataset["items"]
    assert len(model.retrieve({"user_id": "u1", "age": 30, "region": "r1", "device": "ios"}, k=5)) == 5


def test_history_frame(trained):
    pytest.importorskip("pandas")
    frame = trained.history_frame()
    assert len(frame) == 1 and "loss" in frame.columns and any(c.startswith("validation.") for c in frame.columns)


def synthetic_frames(description_path, keep_default_na=False):
    """The synthetic CSVs read by pandas with its own type inference (ints, floats, str), and the description's
    features with their columns named."""
    pd = pytest.importorskip("pandas")
    description = json.loads(Path(description_path).read_text())
    root = Path(description_path).parent

    def read(section):
        frame = pd.read_csv(root / description[section]["path"], keep_default_na=keep_default_na)
        features = []
        for f in description[section]["features"]:
            f = dict(f)
            f["column"] = frame.columns[f["column"]]
            features.append(f)
        return frame, features

    users, user_features = read("users")
    items, item_features = read("items")
    interactions = pd.read_csv(root / "interactions.csv")
    assert interactions["timestamp"].dtype == np.int64 and items["price"].dtype == np.float64
    return funnel.Dataset(interactions, users=users, items=items, user="user_id", item="item_id", timestamp="timestamp",
                          user_features=user_features, item_features=item_features, name=description["name"])


def test_dataframes_train_the_same_model_as_csv(synthetic):
    from_csv = funnel.train(synthetic, config=QUICK, progress=None)
    from_frames = funnel.train(synthetic_frames(synthetic), config=QUICK, progress=None)
    assert from_csv.model_path is None and from_frames.model_bytes is not None
    assert from_frames.model_bytes == from_csv.model_bytes
    untimed = lambda history: [{k: v for k, v in e.items() if k != "samples_per_second"} for e in history]
    assert untimed(from_frames.history) == untimed(from_csv.history) and from_frames.test == from_csv.test


def test_empty_fields_read_by_default_read_csv_train_as_from_csv(synthetic, tmp_path):
    # pandas.read_csv makes an empty field NaN (a float column for age, NaN in the object column of regions);
    # the trainer's CSV reader reads it as a missing value, and so must the DataFrame path.
    pytest.importorskip("pandas")
    root = Path(synthetic).parent
    for name in ("dataset.json", "items.csv", "interactions.csv"):
        (tmp_path / name).write_bytes((root / name).read_bytes())
    lines = (root / "users.csv").read_text().splitlines()
    lines[2] = ",".join(lines[2].split(",")[:2] + ["", lines[2].split(",")[3]])  # no region
    lines[3] = ",".join(lines[3].split(",")[:1] + [""] + lines[3].split(",")[2:])  # no age
    (tmp_path / "users.csv").write_text("\n".join(lines) + "\n")
    description = str(tmp_path / "dataset.json")
    frames = synthetic_frames(description, keep_default_na=True)
    assert frames.users["age"].isna().sum() == 1 and frames.users["region"].isna().sum() == 1
    from_csv = funnel.train(description, config=QUICK, progress=None)
    from_frames = funnel.train(frames, config=QUICK, progress=None)
    assert from_frames.model_bytes == from_csv.model_bytes


def test_a_missing_key_is_still_an_error():
    pd = pytest.importorskip("pandas")
    interactions = pd.DataFrame({"user_id": ["u1", None, "u2"], "item_id": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="interactions row 1: column 'user_id'"):
        funnel.train(interactions, config=QUICK, progress=None)


def test_ranker_from_dataframes_equals_csv(synthetic):
    from_csv = funnel.train_ranker(synthetic, config=RANKER, progress=None)
    from_frames = funnel.train_ranker(synthetic_frames(synthetic), config=RANKER, progress=None)
    assert from_frames.model_bytes == from_csv.model_bytes
    assert set(from_csv.test) >= {"auc", "gauc", "logloss"}
    model = from_frames.model
    p = model.rank({"age": 30, "region": "r1"}, behaviours=["i3", "i8"], candidates=["i5", "i9"])
    assert p.shape == (2,) and ((p > 0) & (p < 1)).all()


def test_a_dataframe_of_interactions_alone():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    interactions = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 40, 800)],
                                 "item_id": rng.integers(0, 30, 800)})  # int item keys
    result = funnel.train(interactions, config=QUICK, progress=None)
    model = result.model
    assert [f["name"] for f in model.inspect()["features"]] == ["user_id", "item_id"]
    top = model.retrieve({"user_id": "u3"}, k=5)
    assert len(top) == 5 and all(k.isdigit() for k in top.keys)


def test_progress_and_epoch_callbacks(synthetic):
    events, epochs = [], []
    funnel.train(synthetic, config=dict(QUICK, epochs=2), progress=events.append, on_epoch=epochs.append)
    assert events and {e["stage"] for e in events} == {"retrieval"}
    assert events[-1]["epoch"] == 2 and events[-1]["step"] == events[-1]["steps"] and events[-1]["epochs"] == 2
    assert [e["epoch"] for e in epochs] == [1, 2] and all("validation" in e for e in epochs)


def test_the_default_progress_is_tqdm(synthetic, capsys):
    pytest.importorskip("tqdm")
    funnel.train(synthetic, config=QUICK)
    assert "retrieval epoch 1/1" in capsys.readouterr().err


def test_ctrl_c_stops_and_keeps_the_last_checkpoint(synthetic, tmp_path):
    config = dict(QUICK, epochs=3)
    checkpoint = tmp_path / "run.checkpoint"

    def interrupt_in_epoch_2(event):
        if event["epoch"] == 2 and event["step"] > 1:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    with pytest.raises(KeyboardInterrupt):
        funnel.train(synthetic, config=config, out=tmp_path / "never.funnel", checkpoint=checkpoint, progress=interrupt_in_epoch_2)
    assert checkpoint.is_file() and not (tmp_path / "never.funnel").exists()
    # The checkpoint holds epoch 1: resuming from it gives the uninterrupted run's model, byte for byte.
    resumed = funnel.train(synthetic, config=config, resume=checkpoint, progress=None)
    uninterrupted = funnel.train(synthetic, config=config, progress=None)
    assert resumed.model_bytes == uninterrupted.model_bytes
    # A callback's own exception stops training the same way, and goes on as it is.
    with pytest.raises(ZeroDivisionError):
        funnel.train(synthetic, config=QUICK, progress=lambda event: 1 / 0)


def test_ctrl_c_without_a_callback(synthetic, tmp_path):
    """A SIGINT from another thread while training runs silently: the trainer's own check of Python's
    signals stops it (the GIL is released, so that thread runs meanwhile)."""
    checkpoint = tmp_path / "long.checkpoint"
    start = time.monotonic()

    def interrupt_after_the_first_checkpoint():
        while not checkpoint.exists() and time.monotonic() - start < 60:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt_after_the_first_checkpoint)
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            funnel.train(synthetic, config=dict(QUICK, epochs=1000), checkpoint=checkpoint, progress=None)
    finally:
        killer.join()
    assert checkpoint.is_file()
    # The checkpoint holds whole epochs: resuming from it with epochs=1 has nothing left to train.
    resumed = funnel.train(synthetic, config=dict(QUICK, epochs=1), resume=checkpoint, progress=None)
    assert resumed.history == [] and resumed.model.catalogue_size == 120


def test_ranker_ctrl_c_and_resume(synthetic, tmp_path):
    config = dict(RANKER, epochs=2)
    checkpoint = tmp_path / "ranker.checkpoint"

    def interrupt_in_epoch_2(event):
        if event["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        funnel.train_ranker(synthetic, config=config, checkpoint=checkpoint, progress=interrupt_in_epoch_2)
    resumed = funnel.train_ranker(synthetic, config=config, resume=checkpoint, progress=None)
    assert resumed.model_bytes == funnel.train_ranker(synthetic, config=config, progress=None).model_bytes


def test_autofas_from_python(synthetic, tmp_path):
    table = funnel.bench_layers(candidates=64, repeats=1)
    assert table["candidates"] == 64 and table["inputs"] and table["outputs"]
    config = dict(RANKER, search_epochs=1, student_epochs=1, mixops=2, operators=[0, 16, 32])
    config["coaction"] = []
    result = funnel.autofas(synthetic, config=config, latency_table=table, out=tmp_path / "autofas.funnel", progress=None)
    assert {"teacher", "search", "student_config"} <= set(result.details)
    model = funnel.Model.load(result.model_path)
    assert model.has_pre_ranking and model.has_ranking
    p = model.prerank({"age": 30, "region": "r1"}, behaviours=["i3"], candidates=["i5", "i9"])
    assert p.shape == (2,) and np.isfinite(p).all()
