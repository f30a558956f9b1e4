"""The README's "Serve your own model" code runs as written on a model no task knows."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import pytest

from serving import contract
from serving.spec import SPEC_FILE, load_spec
from training.model_config import configured_models
from training.tokenization import train_tokenizer

README = Path(__file__).resolve().parents[3] / "training" / "README.md"


def readme_code() -> str:
    section = README.read_text().split("## Serve your own model", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the section has a python block"
    return match.group(1)


def reviews_model(vocab: int) -> keras.Model:
    ids = keras.Input((None,), dtype="int32", name="review_ids")
    # mask_zero: the mean skips the padding (pad id 0), as export_for_serving requires
    vectors = keras.layers.Embedding(vocab, 8, mask_zero=True)(ids)
    features = keras.layers.GlobalAveragePooling1D()(vectors)
    return keras.Model(
        {"review_ids": ids},
        {
            "sentiment_probs": keras.layers.Dense(3, "softmax", name="sentiment_probs")(features),
            "stars": keras.layers.Dense(1, name="stars")(features),
        },
    )


def test_readme_code_exports_a_served_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    texts = ["great battery, terrible screen.", "loved it.", "the screen broke after a week."]
    train_tokenizer(texts * 3, vocab_size=2000).save("tokenizer.json")
    reviews_model(2000).save("reviews.keras")
    code = readme_code()
    assert len(code.strip().splitlines()) <= 30
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    version = tmp_path / "model_repo" / "reviews" / "1"
    spec = load_spec(version / contract.ASSETS_DIR / SPEC_FILE)
    assert [head.field for head in spec.heads] == ["sentiment", "stars"]
    config = (tmp_path / "model_repo" / contract.MODELS_CONFIG_FILE).read_text()
    assert configured_models(config) == ["reviews"]
