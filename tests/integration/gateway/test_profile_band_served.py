"""The profile age-band head served end to end: a tiny profile model trained by the task on
the blog fixtures (default hyperparameters' heads, tiny sizes), exported with its spec, served
by the local model server, answered by the gateway's ``/v1/profile`` alias and ``:predict``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from flask import Flask

from serving import contract
from serving.encoding import encode_instances
from serving.spec import SPEC_FILE, CategoricalHead, load_spec
from serving.tokenization import load_tokenizer
from tests.api.conftest import gateway_app
from tests.support.model_server import running_model_server
from tests.support.profile_task import ProfileRun
from training.models.profile_heads import AGE_BAND_LABELS

pytestmark = pytest.mark.slow
POSTS = {"posts": ["Finished my thesis draft today.", "Work was long, the project is busy."]}


@pytest.fixture(scope="module")
def version(profile_tiny_run: ProfileRun) -> Path:
    """The session's tiny profile run's version (tests/conftest.py; test_profile checks it)."""
    return profile_tiny_run.version


@pytest.fixture(scope="module")
def app(version: Path) -> Iterator[Flask]:
    repo = version.parents[1]
    with running_model_server(repo) as server, gateway_app(repo, server.grpc_target) as built:
        yield built


def _served_band(version: Path) -> str:
    """The band the exported SavedModel itself gives for POSTS (argmax of age_band_probs)."""
    assets = version / contract.ASSETS_DIR
    spec = load_spec(assets / SPEC_FILE)
    tokenizer = load_tokenizer(assets / contract.TOKENIZER_FILE)
    ids = encode_instances(spec, {contract.TOKENIZER_FILE: tokenizer}, [POSTS])["post_ids"]
    signature = tf.saved_model.load(str(version)).signatures[contract.SIGNATURE_NAME]
    probs = signature(post_ids=tf.constant(ids))["age_band_probs"].numpy()
    assert probs.shape == (1, len(AGE_BAND_LABELS))
    return AGE_BAND_LABELS[int(np.argmax(probs[0]))]


def test_profile_answers_carry_the_band_heads_answer(app: Flask, version: Path) -> None:
    head = {head.field: head for head in load_spec(version / contract.ASSETS_DIR / SPEC_FILE).heads}
    band_head = head["age_band"]
    assert isinstance(band_head, CategoricalHead) and band_head.output == "age_band_probs"
    assert band_head.labels == list(AGE_BAND_LABELS)
    client = app.test_client()
    answer = client.post("/v1/profile", json=POSTS).get_json()
    assert {"age", "income_group", "gender", "age_band"} <= set(answer)
    band = answer["age_band"]
    assert list(band["probabilities"]) == list(AGE_BAND_LABELS)
    assert sum(band["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert band["label"] == _served_band(version)
    assert band["probability"] == pytest.approx(max(band["probabilities"].values()))
    assert answer["income_group"]["is_proxy"] is True  # the proxy note is still there
    batch = client.post("/v1/profile", json={"instances": [POSTS, POSTS]}).get_json()
    assert [item["age_band"]["label"] for item in batch["predictions"]] == [band["label"]] * 2
    generic = client.post("/v1/models/profile:predict", json={"inputs": POSTS}).get_json()
    assert generic["outputs"]["age_band"]["label"] == band["label"]
