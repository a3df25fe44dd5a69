"""Fixtures of the Python module's tests: the golden model files and a small synthetic dataset."""
import json
from pathlib import Path

import pytest

import funnel

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden"


@pytest.fixture(scope="session")
def expected():
    return json.loads((GOLDEN / "expected.json").read_text())


@pytest.fixture(scope="session")
def golden():
    """Model files by name, each loaded once (mmap)."""
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = funnel.Model.load(GOLDEN / name)
        return cache[name]

    return load


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """A small built-in dataset (the trainer's generator): the path of its dataset.json."""
    return funnel.generate(str(tmp_path_factory.mktemp("synthetic")), users=150, items=120, seed=5)


@pytest.fixture(scope="session")
def trained(synthetic, tmp_path_factory):
    """A two-tower model trained on the synthetic data from its description (one thread, seed 3)."""
    out = tmp_path_factory.mktemp("trained") / "model.funnel"
    return funnel.train(synthetic, config={"epochs": 1, "threads": 1, "seed": 3, "embedding_dim": 8, "hidden": [16],
                                           "output_dim": 8}, out=out, progress=None)
