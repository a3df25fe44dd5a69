"""Every error path: the right Python exception with the SDK's (or the trainer's) message, and the module
answering as before afterwards."""
import math

import numpy as np
import pytest

import funnel
from conftest import GOLDEN

USER = {"user_id": "u3", "age": 41, "region": "r2", "device": "ios"}


@pytest.fixture()
def model(golden):
    m = golden("three-stages.funnel")
    before = m.retrieve(USER, k=5)
    yield m
    after = m.retrieve(USER, k=5)  # still answers, and the same
    assert list(after.keys) == list(before.keys) and np.array_equal(after.scores, before.scores)


def test_loading(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such.funnel"):
        funnel.Model.load(tmp_path / "no-such.funnel")
    good = (GOLDEN / "retrieval.funnel").read_bytes()
    with pytest.raises(funnel.CorruptModelError):
        funnel.Model.load(good[: len(good) // 2])
    with pytest.raises(funnel.CorruptModelError):
        funnel.Model.load(b"not a model at all, just some bytes of text")
    flipped = bytearray(good)
    flipped[4] ^= 0xFF  # the file identifier
    with pytest.raises(funnel.CorruptModelError, match="identifier|Funnel"):
        funnel.Model.load(bytes(flipped))
    (tmp_path / "folder.funnel").mkdir()
    with pytest.raises(OSError):
        funnel.Model.load(tmp_path / "folder.funnel")
    with pytest.raises(TypeError, match="path"):
        funnel.Model.load(42)
    with pytest.raises(TypeError, match="C-contiguous"):  # a strided view is not one run of bytes
        funnel.Model.load(memoryview(good)[::-1])
    assert funnel.Model.load(memoryview(good)).to_bytes() == good
    assert issubclass(funnel.CorruptModelError, ValueError) and issubclass(funnel.CorruptModelError, funnel.FunnelError)


def test_bad_requests(model):
    with pytest.raises(ValueError, match="device"):
        model.retrieve({"user_id": "u3", "age": 41, "region": "r2"})  # a missing feature, named
    with pytest.raises(ValueError):
        model.retrieve(USER, k=0)
    with pytest.raises(ValueError, match="NaN"):
        model.retrieve(dict(USER, age=math.nan))
    with pytest.raises(ValueError, match="infinite"):
        model.retrieve(dict(USER, age=np.float32("inf")))
    with pytest.raises(ValueError, match="no_such_feature|not a feature"):
        model.retrieve(dict(USER, no_such_feature="x"))
    with pytest.raises(TypeError, match="dict"):
        model.retrieve(["u3"])
    with pytest.raises(TypeError, match="bool|str, a number"):
        model.retrieve(dict(USER, age=True))
    with pytest.raises(TypeError, match="names must be str"):
        model.retrieve({1: "x"})
    with pytest.raises(TypeError, match="must be a str, a number or a list"):
        model.retrieve(dict(USER, region=object()))
    with pytest.raises(TypeError):
        model.retrieve(USER, k="ten")
    with pytest.raises(TypeError, match="one str"):
        model.retrieve(USER, exclude="i1")
    with pytest.raises(TypeError, match="list of dicts or a DataFrame"):
        model.retrieve_batch(USER)
    with pytest.raises(ValueError, match="NaN"):
        model.retrieve_batch([USER, dict(USER, age=float("nan"))])


def test_ranking_errors(model, golden):
    with pytest.raises(KeyError, match="not in the model's item table"):
        model.rank(USER, behaviours=["i3"], candidates=["i5", "no such item"])
    with pytest.raises(TypeError):
        model.rank(USER, behaviours=[3], candidates=["i5"])
    with pytest.raises(ValueError, match="ranking|stage"):
        golden("retrieval.funnel").rank(USER, candidates=["i5"])
    with pytest.raises(ValueError, match="retrieval|stage"):
        golden("ranking-can.funnel").retrieve(USER)


def test_save_to_a_missing_folder(model, tmp_path):
    with pytest.raises(OSError):
        model.save(tmp_path / "no" / "such" / "folder" / "m.funnel")


def test_training_errors(synthetic, tmp_path):
    quick = {"epochs": 1, "threads": 1}
    with pytest.raises(ValueError, match="unknown field 'epoch'"):
        funnel.train(synthetic, config={"epoch": 1}, progress=None)
    with pytest.raises(ValueError, match="'epochs' has the wrong type"):
        funnel.train(synthetic, config={"epochs": "two"}, progress=None)
    with pytest.raises(ValueError, match="NaN"):
        funnel.train(synthetic, config={"learning_rate": math.nan}, progress=None)
    with pytest.raises(TypeError, match="config"):
        funnel.train(synthetic, config=["epochs", 1], progress=None)
    with pytest.raises(FileNotFoundError):
        funnel.train(tmp_path / "missing.json", config=quick, progress=None)
    with pytest.raises(TypeError, match="data"):
        funnel.train(42, config=quick, progress=None)
    with pytest.raises(TypeError, match="progress"):
        funnel.train(synthetic, config=quick, progress=3)
    with pytest.raises(ValueError, match="unknown field"):
        funnel.train_ranker(synthetic, config={"no_such_field": 1}, progress=None)
    with pytest.raises(ValueError, match="latency table"):
        funnel.autofas(synthetic, config={"epochs": 1}, progress=None)
    # A broken row: the message names the file, the line and the field.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "interactions.csv").write_text("u1,i1,10\nu2,i2,eleven\n")
    (bad / "dataset.json").write_text('{"interactions": {"path": "interactions.csv", "timestamp": 2}}')
    with pytest.raises(ValueError, match=r"interactions.csv:2: field 3 \(timestamp\)"):
        funnel.train(str(bad / "dataset.json"), config=quick, progress=None)


def test_frame_errors():
    pd = pytest.importorskip("pandas")
    quick = {"epochs": 1, "threads": 1}
    interactions = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"]})
    with pytest.raises(ValueError, match="no column 'item' for the item"):
        funnel.train(funnel.Dataset(interactions, item="item"), config=quick, progress=None)
    users = pd.DataFrame({"user_id": ["u1", "u2"], "age": [31.0, math.inf]})
    with pytest.raises(ValueError, match="users row 1: column 'age'"):
        funnel.train(funnel.Dataset(interactions, users=users), config=quick, progress=None)
    # NaN is a missing value, an empty field: in a dense feature that is an error, as in a CSV file.
    users = pd.DataFrame({"user_id": ["u1", "u2"], "age": [31.0, math.nan]})
    with pytest.raises(ValueError, match="users row 1: field 2 \\(age\\): '' is not a number"):
        funnel.train(funnel.Dataset(interactions, users=users), config=quick, progress=None)
    users = pd.DataFrame({"user_id": ["u1"], "age": [31.0]})
    with pytest.raises(ValueError, match="key 'u2' is not in the users table"):
        funnel.train(funnel.Dataset(interactions, users=users), config=quick, progress=None)
    with pytest.raises(ValueError, match="no column 'height'"):
        funnel.train(funnel.Dataset(interactions, users=users, user_features=[{"name": "h", "column": "height"}]), config=quick,
                     progress=None)
    with pytest.raises(TypeError, match="DataFrame"):
        funnel.train(funnel.Dataset([("u1", "i1")]), config=quick, progress=None)


def test_a_trainer_write_the_system_refuses(synthetic, tmp_path):
    # As docs/python.md's table says: the trainer's atomic write fails as funnel.TrainingError naming the file.
    out = tmp_path / "no-such-folder" / "model.funnel"
    with pytest.raises(funnel.TrainingError, match="no-such-folder/model.funnel: cannot create a temporary file"):
        funnel.train(synthetic, config={"epochs": 1, "threads": 1}, out=out, progress=None)
