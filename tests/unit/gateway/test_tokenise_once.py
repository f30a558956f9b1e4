"""A qa request tokenises its article once: the no_words check, the id tensors and the
evidence head's segments share one encoding (counted on a real ``tokenizers`` tokenizer)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel

from serving import contract
from serving.encoding import segment_texts
from serving.gateway import runtime as runtime_module
from serving.gateway.aliases import prepare_alias
from serving.gateway.routes import prepare
from serving.gateway.runtime import ModelRuntime, load_runtime
from serving.gateway.settings import GatewaySettings
from serving.spec import (
    SPEC_FILE,
    CategoricalHead,
    SegmentRule,
    SegmentWeightsHead,
    ServingSpec,
    TextInput,
    dump_spec,
)
from serving.tokenization import encode_texts, parse_tokenizer

WORDS = ["[PAD]", "[UNK]", "mary", "john", "went", "moved", "to", "the", "kitchen", "office"]
WORDS += ["where", "is", ".", "?"]
ARTICLE = "Mary went to the kitchen. John moved to the office. Mary went to the office."
QUESTION = "Where is Mary?"
RULE = SegmentRule(separator_token=".", order="last_first", max_segments=4)


class CountingTokenizer:
    """A real tokenizer that counts the texts it encodes."""

    def __init__(self, real: Tokenizer) -> None:
        self.real = real
        self.encoded: Counter[str] = Counter()

    def encode(self, text: str, *args: Any, **kwargs: Any) -> Any:
        self.encoded[text] += 1
        return self.real.encode(text, *args, **kwargs)

    def encode_batch(self, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        self.encoded.update(texts)
        return self.real.encode_batch(texts, *args, **kwargs)

    def encode_batch_fast(self, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        self.encoded.update(texts)
        return self.real.encode_batch_fast(texts, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def article_tokenisations(self) -> int:
        """How often the article, or a piece of it, was tokenised."""
        return sum(n for text, n in self.encoded.items() if text and text in ARTICLE)


def _tokenizer() -> Tokenizer:
    built = Tokenizer(WordLevel({word: i for i, word in enumerate(WORDS)}, unk_token="[UNK]"))
    built.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()])
    built.pre_tokenizer = pre_tokenizers.Whitespace()
    return built


@pytest.fixture
def qa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelRuntime, CountingTokenizer]:
    """A qa version with an evidence head (assets only: no backend call is made)."""
    text: dict[str, Any] = {"tokenizer": contract.TOKENIZER_FILE, "vocab_size": len(WORDS)}
    article = TextInput(
        field="article", tensor="article_ids", max_tokens=12, truncation="left", **text
    )
    question = TextInput(field="question", tensor="question_ids", max_tokens=8, **text)
    answer = CategoricalHead(output="answer_probs", field="answer", labels=["kitchen", "office"])
    evidence = SegmentWeightsHead(
        output="weights", field="evidence", input_field="article", rule=RULE
    )
    spec = ServingSpec(
        title="qa",
        inputs=[article, question],
        heads=[answer, evidence],
        example={"article": ARTICLE, "question": QUESTION},
    )
    assets = tmp_path / "qa" / "1" / contract.ASSETS_DIR
    assets.mkdir(parents=True)
    (assets / SPEC_FILE).write_text(dump_spec(spec))
    _tokenizer().save(str(assets / contract.TOKENIZER_FILE))
    counting: list[CountingTokenizer] = []

    def load(text: str) -> Any:
        counting.append(CountingTokenizer(parse_tokenizer(text)))
        return counting[-1]

    monkeypatch.setattr(runtime_module, "parse_tokenizer", load)
    runtime = load_runtime(tmp_path, "qa", 1, GatewaySettings())
    return runtime, counting[0]


def _answer(runtime: ModelRuntime, instances: Any, encodings: Any) -> list[dict[str, Any]]:
    outputs = {
        "answer_probs": np.tile(np.array([[0.2, 0.8]], dtype=np.float32), (len(instances), 1)),
        "weights": np.tile(np.array([[0.6, 0.3, 0.1, 0.0]], dtype=np.float32), (len(instances), 1)),
    }
    return runtime.postprocess(outputs, instances, None, encodings)


def test_an_alias_qa_request_tokenises_its_article_once(qa) -> None:
    runtime, tokenizer = qa
    tokenizer.encoded.clear()
    prepared = prepare_alias(runtime, {"article": ARTICLE, "question": QUESTION})
    encoded = runtime.encode(prepared.instances, prepared.known)
    answers = _answer(runtime, prepared.instances, encoded.encodings)
    assert tokenizer.article_tokenisations() == 1
    assert tokenizer.encoded[QUESTION] == 1
    # ... and the answer is the one of three separate tokenisations
    real = _tokenizer()
    assert (encoded.tensors["article_ids"] == encode_texts(real, [ARTICLE], 12, "left")).all()
    assert (encoded.tensors["question_ids"] == encode_texts(real, [QUESTION], 8)).all()
    slots = segment_texts(real, ARTICLE, runtime.spec.input("article"), RULE)
    assert [item["segment"] for item in answers[0]["evidence"]] == [s for s in slots if s][:3]


def test_a_batch_with_the_same_text_twice_cuts_each_for_its_input(qa) -> None:
    runtime, tokenizer = qa
    # One text as article (12 tokens, cut left) and as question (8, cut right): one encoding
    # kept by validation serves one of them; the other is tokenised, never reused cut.
    instances = {"instances": [{"article": ARTICLE, "question": ARTICLE}]}
    tokenizer.encoded.clear()  # the load's checks encode the example (ARTICLE) too
    prepared = prepare(runtime, instances)
    encoded = runtime.encode(prepared.instances, prepared.known)
    real = _tokenizer()
    assert (encoded.tensors["article_ids"] == encode_texts(real, [ARTICLE], 12, "left")).all()
    assert (encoded.tensors["question_ids"] == encode_texts(real, [ARTICLE], 8, "right")).all()
    assert tokenizer.encoded[ARTICLE] == 2


def test_only_the_evidence_input_keeps_its_encodings_and_slots_answer_alike(qa) -> None:
    # A cut encoding holds its whole text's tokens: only an input a segment head reads keeps
    # them, and the gateway takes its slots before the model call (tests/api/test_held_encodings).
    runtime, tokenizer = qa
    prepared = prepare_alias(runtime, {"article": ARTICLE, "question": QUESTION})
    encoded = runtime.encode(prepared.instances, prepared.known)
    assert set(encoded.encodings) == {"article"}
    segments = runtime.segments(prepared.instances, encoded.encodings)
    tokenizer.encoded.clear()
    outputs = {
        "answer_probs": np.array([[0.2, 0.8]], dtype=np.float32),
        "weights": np.array([[0.6, 0.3, 0.1, 0.0]], dtype=np.float32),
    }
    from_slots = runtime.postprocess(outputs, prepared.instances, None, segments=segments)
    assert not tokenizer.encoded  # the slots spare a tokenisation
    assert from_slots == _answer(runtime, prepared.instances, encoded.encodings)
