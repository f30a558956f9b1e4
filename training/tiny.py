"""Tiny but real models for tests: trained for one step on generated text, then exported.

Tests of the gateway and the model server use these instead of mocks, so every test runs
the production path (tokenizer.json -> ids -> SavedModel signature -> readable answer).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from serving import contract
from serving.tokenization import encode_texts, load_tokenizer
from training.export import export_version
from training.layers import MaskedMeanPooling
from training.tokenization import SEP_TOKEN, train_tokenizer

PEOPLE = ("mary", "john", "sandra", "daniel")
PLACES = ("kitchen", "garden", "office", "bathroom", "hallway")
VERBS = ("moved to", "went to", "journeyed to", "travelled to")
Arrays = dict[str, np.ndarray]
INCOME_LABELS = tuple(f"group {index}" for index in range(contract.INCOME_GROUPS))


def tiny_story(rng: random.Random, sentences: int = 4) -> tuple[str, str, str]:
    """A bAbI-like story, a question about one person in it, and the answer."""
    where: dict[str, str] = {}
    lines = []
    for _ in range(sentences):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        where[person] = place
        lines.append(f"{person.title()} {rng.choice(VERBS)} the {place}.")
    person = rng.choice(sorted(where))
    return " ".join(lines), f"Where is {person.title()}?", where[person]


def _corpus(rng: random.Random) -> list[str]:
    stories = [" ".join(tiny_story(rng)[:2]) for _ in range(50)]
    return [*stories, "the quick brown fox", "a person writes a blog post", SEP_TOKEN]


def _encoder(vocab: int, width: int = 8) -> Callable[[keras.KerasTensor], keras.KerasTensor]:
    embedding = keras.layers.Embedding(vocab, width)
    pooling = MaskedMeanPooling()  # ignores pad id 0, so batching with padding changes nothing
    return lambda ids: pooling(embedding(ids), ids)


def _qa_model(vocab: int, answers: int) -> keras.Model:
    article = keras.Input((None,), dtype="int32", name="article_ids")
    question = keras.Input((None,), dtype="int32", name="question_ids")
    merged = keras.layers.Concatenate()([_encoder(vocab)(article), _encoder(vocab)(question)])
    probs = keras.layers.Dense(answers, activation="softmax", name="answer_probs")(merged)
    return keras.Model({"article_ids": article, "question_ids": question}, {"answer_probs": probs})


def _profile_model(vocab: int) -> keras.Model:
    posts = keras.Input((None,), dtype="int32", name="post_ids")
    features = _encoder(vocab)(posts)
    outputs = {
        "age": keras.layers.Dense(1, name="age")(features),
        "income_probs": keras.layers.Dense(
            contract.INCOME_GROUPS, activation="softmax", name="income_probs"
        )(features),
        "gender_prob": keras.layers.Dense(1, activation="sigmoid", name="gender_prob")(features),
    }
    return keras.Model({"post_ids": posts}, outputs)


def _similarity_model(vocab: int) -> keras.Model:
    left = keras.Input((None,), dtype="int32", name="left_ids")
    right = keras.Input((None,), dtype="int32", name="right_ids")
    encode = _encoder(vocab)  # one encoder instance: shared weights, symmetric score
    a, b = encode(left), encode(right)
    merged = keras.layers.Concatenate()([keras.ops.abs(a - b), keras.layers.Multiply()([a, b])])
    score = keras.layers.Dense(1, activation="sigmoid", name="score")(merged)
    return keras.Model({"left_ids": left, "right_ids": right}, {"score": score})


def build_tiny_repo(repo: Path, versions: int = 1, seed: int = 7) -> Path:
    """Export tiny qa, profile and similarity models (``versions`` each) into repo."""
    keras.utils.set_random_seed(seed)
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="tiny-tokenizer-"))
    tokenizer_path = workdir / contract.TOKENIZER_FILE
    train_tokenizer(_corpus(rng), vocab_size=200).save(str(tokenizer_path))
    tokenizer = load_tokenizer(tokenizer_path)
    vocab = tokenizer.get_vocab_size()
    stories = [tiny_story(rng) for _ in range(8)]
    article_ids = encode_texts(tokenizer, [s[0] for s in stories], 64, "left")
    question_ids = encode_texts(tokenizer, [s[1] for s in stories], 8)
    builders: dict[str, tuple[Callable[[], keras.Model], Arrays, Arrays]] = {
        "qa": (
            lambda: _qa_model(vocab, len(PLACES)),
            {"article_ids": article_ids, "question_ids": question_ids},
            {"answer_probs": np.array([PLACES.index(s[2]) for s in stories])},
        ),
        "profile": (
            lambda: _profile_model(vocab),
            {"post_ids": article_ids},
            {
                "age": np.full((8, 1), 25.0),
                "income_probs": np.arange(8) % 10,
                "gender_prob": np.arange(8) % 2,
            },
        ),
        "similarity": (
            lambda: _similarity_model(vocab),
            {"left_ids": article_ids, "right_ids": question_ids},
            {"score": np.linspace(0, 1, 8).reshape(8, 1)},
        ),
    }
    losses = {
        "answer_probs": "sparse_categorical_crossentropy",
        "age": "mse",
        "income_probs": "sparse_categorical_crossentropy",
        "gender_prob": "binary_crossentropy",
        "score": "mse",
    }
    for name, (build, inputs, targets) in builders.items():
        for _ in range(versions):
            model = build()
            model.compile(optimizer="adam", loss={key: losses[key] for key in targets})
            model.fit(inputs, targets, epochs=1, batch_size=8, verbose=0)
            export_version(
                model,
                name=name,
                repo=repo,
                tokenizer_path=tokenizer_path,
                preprocessing=_preprocessing(name),
                labels=_labels(name),
                model_card={"description": f"tiny {name} model for tests", "preset": "tiny"},
                warmup_batches=[{key: value[:2] for key, value in inputs.items()}],
            )
    return repo


def _preprocessing(name: str) -> dict[str, object]:
    lengths = {
        "article_ids": (64, "left"),
        "question_ids": (8, "right"),
        "post_ids": (64, "right"),
        "left_ids": (32, "right"),
        "right_ids": (32, "right"),
    }
    inputs = {
        key: {"max_length": lengths[key][0], "truncation": lengths[key][1]}
        for key in contract.SIGNATURES[name].inputs
    }
    return {
        "inputs": inputs,
        "pad_id": contract.PAD_ID,
        "post_separator": SEP_TOKEN,
        "lowercase": True,
    }


def _labels(name: str) -> dict[str, object]:
    if name == "qa":
        return {"answers": list(PLACES)}
    if name == "profile":
        return {
            "income_groups": [
                {"group": index, "label": label, "rule": "tiny test model"}
                for index, label in enumerate(INCOME_LABELS)
            ],
            "income_is_proxy": True,
            "income_note": "Tiny test model: the income head predicts an industry proxy.",
            "gender": {"labels": ["female", "male"], "positive": "male"},
            "age": {"unit": "years"},
        }
    return {"score": {"range": [0.0, 1.0], "meaning": "semantic similarity, 1 = same meaning"}}
