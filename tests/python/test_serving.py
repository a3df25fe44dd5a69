"""funnel.Model against the native SDK's recorded answers on the golden files, and the rest of its API."""
import math

import numpy as np
import pytest

import funnel
from conftest import GOLDEN

TOLERANCE = 2e-5  # between the AVX2 and the portable kernels, as tests/sdk/test_golden_files.cpp allows


def test_retrieve_matches_the_native_sdk(golden, expected):
    for case in expected["retrieve"]:
        model = golden(case["model"])
        got = model.retrieve(case["user"], k=case["k"], exclude=case.get("exclude"))
        want = case["answer"]["recommendations"]
        assert list(got.keys) == [r["key"] for r in want], case
        assert list(got.indices) == [r["index"] for r in want], case
        np.testing.assert_allclose(got.scores, [r["score"] for r in want], atol=TOLERANCE)
        assert got.scores.dtype == np.float32 and got.indices.dtype == np.int64


def test_rank_and_prerank_match_the_native_sdk(golden, expected):
    for verb in ("rank", "prerank"):
        for case in expected[verb]:
            model = golden(case["model"])
            call = model.rank if verb == "rank" else model.prerank
            p = call(case["user"], behaviours=case["behaviours"], candidates=case["candidates"])
            by_key = {r["key"]: r["probability"] for r in case["answer"]["ranked"]}
            np.testing.assert_allclose(p, [by_key[c] for c in case["candidates"]], atol=TOLERANCE)


def test_cascade_matches_the_native_sdk(golden, expected):
    for case in expected["cascade"]:
        model = golden(case["model"])
        result = model.recommend(case.get("user"), k=case["k"], retrieve_k=case["retrieve_k"], prerank_k=case["prerank_k"],
                                 behaviours=case.get("behaviours"), exclude=case.get("exclude"))
        want = case["answer"]["recommendations"]
        assert list(result.keys) == [r["key"] for r in want]
        np.testing.assert_allclose(result.scores, [r["score"] for r in want], atol=TOLERANCE)
        np.testing.assert_allclose(result.retrieval_scores, [r["retrieval_score"] for r in want], atol=TOLERANCE)
        assert [s.stage for s in result.stages] == ["retrieval", "pre_ranking", "ranking"]
        assert result.stages[0].kept == case["retrieve_k"] and result.stages[1].kept == case["prerank_k"]
        assert all(s.milliseconds >= 0 for s in result.stages) and result.milliseconds >= 0
        assert set(result.timings()) == {"retrieval", "pre_ranking", "ranking", "total"}


def test_bytes_and_path_give_the_same_model(golden):
    model = golden("retrieval.funnel")
    copy = funnel.Model.load((GOLDEN / "retrieval.funnel").read_bytes())
    assert copy.to_bytes() == model.to_bytes() == (GOLDEN / "retrieval.funnel").read_bytes()
    user = {"user_id": "u3", "age": 41, "region": "r2", "device": "ios"}
    a, b = model.retrieve(user, k=5), copy.retrieve(user, k=5)
    assert list(a.keys) == list(b.keys) and np.array_equal(a.scores, b.scores)


def test_an_empty_allow_list_allows_nothing(golden):
    model = golden("retrieval.funnel")
    user = {"user_id": "u3", "age": 41, "region": "r2", "device": "ios"}
    assert len(model.retrieve(user, k=5, allow=None)) == 5
    assert len(model.retrieve(user, k=5, allow=[])) == 0
    assert len(model.retrieve(user, k=5, allow=["not an item"])) == 0
    three = golden("three-stages.funnel")
    assert len(three.recommend(user, k=5, allow=None)) == 5
    assert len(three.recommend(user, k=5, allow=[])) == 0


def test_inspect_and_verify(golden):
    info = golden("three-stages.funnel").inspect()
    assert info["has_retrieval"] and info["has_pre_ranking"] and info["has_ranking"]
    assert info["catalogue_size"] == 40 and info["embedding_dim"] == 4
    assert "user_id" in [f["name"] for f in info["features"]]
    assert any(t["name"].startswith("pre_ranking/") for t in info["tensors"])
    assert isinstance(info["metadata"], dict) and info["kernels"] == funnel.kernels
    golden("three-stages.funnel").verify()
    assert "retrieval (40 items)" in repr(golden("three-stages.funnel"))


def test_allow_list_and_exclude(golden):
    model = golden("retrieval.funnel")
    user = {"user_id": "u3", "age": 41, "region": "r2", "device": "ios"}
    everything = model.retrieve(user, k=40)
    allowed = ["i5", "i9", "i30", "not an item"]
    got = model.retrieve(user, k=3, allow=allowed, exclude=["i9"])
    want = [k for k in everything.keys if k in ("i5", "i30")]
    assert list(got.keys) == want
    np.testing.assert_allclose(got.scores, [everything.scores[list(everything.keys).index(k)] for k in want], atol=0)
    assert [model.item_keys[i] for i in got.indices] == want


def test_retrieve_batch_from_dicts_and_a_dataframe(golden, expected):
    pd = pytest.importorskip("pandas")
    model = golden("retrieval.funnel")
    users = [c["user"] for c in expected["retrieve"] if c["model"] == "retrieval.funnel"]
    batch = model.retrieve_batch(users, k=7, exclude=["i1"])
    assert batch.keys.shape == (len(users), 7)
    for row, user in enumerate(users):
        one = model.retrieve(user, k=7, exclude=["i1"])
        assert list(batch.keys[row]) == list(one.keys)
        np.testing.assert_allclose(batch.scores[row], one.scores, atol=TOLERANCE)
    frame = pd.DataFrame([{k: str(v) for k, v in u.items()} for u in users])
    from_frame = model.retrieve_batch(frame, k=7, exclude=["i1"])
    text_users = model.retrieve_batch([{k: str(v) for k, v in u.items()} for u in users], k=7, exclude=["i1"])
    assert (from_frame.keys == text_users.keys).all() and np.array_equal(from_frame.scores, text_users.scores)
    assert len(batch.to_frame()) == len(users) * 7


def test_catalogue_and_tensors_are_read_only_views(golden):
    for name, dtype in (("retrieval.funnel", np.float32), ("retrieval-f16.funnel", np.float16), ("retrieval-int8.funnel", np.int8)):
        model = golden(name)
        rows = model.catalogue
        assert rows.dtype == dtype and rows.shape == (40, 4) and not rows.flags.writeable and not rows.flags.owndata
        with pytest.raises(ValueError):
            rows[0, 0] = 1
        assert (model.catalogue_scales is not None) == (dtype == np.int8)
    model = golden("retrieval.funnel")
    tensors = model.tensors()
    assert all(not t.flags.writeable for t in tensors.values())
    # A view of the file's bytes: the catalogue's first row is the same memory as one of the tensors.
    assert any(np.shares_memory(model.catalogue, t) for t in tensors.values())
    # Scores are the catalogue rows times the user embedding.
    user = {"user_id": "u3", "age": 41, "region": "r2", "device": "ios"}
    u = model.user_embedding(user)
    got = model.retrieve(user, k=3)
    np.testing.assert_allclose(got.scores, model.catalogue[got.indices] @ u, atol=1e-6)
    # The view keeps the model alive after the last reference to it goes.
    view = funnel.Model.load(GOLDEN / "retrieval.funnel").catalogue
    assert np.isfinite(view.astype(np.float64)).all() and view.shape == (40, 4)


def test_item_embedding_update_catalogue_and_save(trained, tmp_path, synthetic):
    import csv
    from pathlib import Path

    model = trained.model
    items = list(csv.reader(open(Path(synthetic).parent / "items.csv")))[1:]
    key, category, price, tags = items[0]
    features = {"item_id": key, "category": category, "price": float(price), "tags": tags}
    row = int(np.flatnonzero(model.item_keys == key)[0])
    np.testing.assert_allclose(model.item_embedding(features), model.catalogue[row], atol=1e-5)

    new = dict(features, item_id="brand new")
    updated = model.update_catalogue(upsert={"brand new": new}, remove=[items[1][0]])
    assert updated.catalogue_size == model.catalogue_size and model.item_keys[-1] != "brand new"
    assert updated.item_keys[-1] == "brand new" and items[1][0] not in set(updated.item_keys)
    path = tmp_path / "updated.funnel"
    updated.save(path)
    assert path.read_bytes() == updated.to_bytes()
    reloaded = funnel.Model.load(path)
    np.testing.assert_allclose(reloaded.catalogue[-1], model.item_embedding(new), atol=1e-5)
    with pytest.raises(ValueError, match="no such item"):
        model.update_catalogue(remove=["no such item"])


def test_keys_that_are_not_utf8_come_back_with_surrogates(tmp_path):
    # The trainer keeps a file's bytes as keys; a key that is not UTF-8 must not make every result raise.
    keys = ["caf\xe9"] + [f"i{i}" for i in range(1, 6)]
    rows = [f"u{u},{key}\n" for u in range(20) for key in keys]
    (tmp_path / "interactions.csv").write_bytes(("user_id,item_id\n" + "".join(rows)).encode("latin-1"))
    (tmp_path / "dataset.json").write_text('{"name": "latin1", "interactions": {"path": "interactions.csv", '
                                           '"header": true, "user": 0, "item": 1}}')
    model = funnel.train(str(tmp_path / "dataset.json"), config={"epochs": 1, "threads": 1, "seed": 3}, progress=None).model
    assert "caf\udce9" in list(model.item_keys)
    assert "caf\udce9" in list(model.retrieve({"user_id": "u1"}, k=6).keys)
