"""The gateway's fit check of a version with a token_labels head (one of a SavedModel not made
by export_for_serving, whose outputs nothing else checked): routed only when each id's row is
a softmax over the labels at the position the id was sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from serving.contract import ASSETS_DIR, TOKENIZER_FILE
from serving.gateway.backends import ModelMetadata, TensorSpec, VersionSelector
from serving.gateway.checks import check_fit
from serving.gateway.runtime import ModelRuntime, UnfitVersionError, load_runtime
from serving.gateway.settings import GatewaySettings
from serving.spec import SPEC_FILE, ServingSpec, TextInput, TokenLabelsHead, dump_spec

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "."]
SPEC = ServingSpec(
    title="tagger",
    inputs=[TextInput(field="text", tensor="ids", max_tokens=10, vocab_size=len(VOCAB))],
    heads=[
        TokenLabelsHead(output="tags", field="tags", input_field="text", labels=["O", "X", "Y"])
    ],
    example={"text": "the cat sat."},
)
Answer = Callable[[np.ndarray], np.ndarray]  # ids [rows, width] -> tags


def softmax(ids: np.ndarray) -> np.ndarray:
    """Per id, a softmax that depends on the id alone (a masking tagger)."""
    logits = np.stack([ids * 0.1, -ids * 0.2, np.ones_like(ids) * 0.3], axis=-1)
    exp = np.exp(logits)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True), dtype=np.float64)


@dataclass
class TokenBackend:
    answer: Answer

    def model_metadata(
        self, model: str, selector: VersionSelector, request_id: str | None = None
    ) -> ModelMetadata:
        return ModelMetadata(
            model,
            selector.version or 0,
            {"ids": TensorSpec("DT_INT32", (-1, -1))},
            {"tags": TensorSpec("DT_FLOAT", (-1, -1, 3))},
            ("serving_default",),
        )

    def predict(
        self,
        model: str,
        selector: VersionSelector,
        inputs: Mapping[str, Any],
        request_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        return {"tags": self.answer(inputs["ids"]).astype(np.float32)}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> ModelRuntime:
    repo = tmp_path_factory.mktemp("token_checks")
    assets = repo / "tagger" / "1" / ASSETS_DIR
    assets.mkdir(parents=True)
    made = Tokenizer(models.WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    made.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    made.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    made.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    made.save(str(assets / TOKENIZER_FILE))
    (assets / SPEC_FILE).write_text(dump_spec(SPEC))
    return load_runtime(repo, "tagger", 1, GatewaySettings())


def test_a_softmax_per_token_fits(runtime: ModelRuntime) -> None:
    check_fit(TokenBackend(softmax), runtime)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda ids: np.log(softmax(ids)), r"tags \(token_labels\): output tags gives values"),
        (lambda ids: softmax(ids).mean(axis=1), r"unusable outputs: .*expected \[2, tokens, 3\]"),
        (lambda ids: softmax(ids)[:, :3], r"unusable outputs: .*has 3 token positions"),
        (lambda ids: softmax(ids)[..., :2], r"unusable outputs: .*expected \[2, tokens, 3\]"),
        (  # each position's answer moves with the row's width (padding not masked)
            lambda ids: softmax(ids + ids.shape[1]),
            r"output tags changes when the inputs are padded further",
        ),
    ],
)
def test_a_version_whose_token_outputs_cannot_be_read_is_unfit(
    runtime: ModelRuntime, answer: Answer, reason: str
) -> None:
    with pytest.raises(UnfitVersionError, match=reason):
        check_fit(TokenBackend(answer), runtime)  # type: ignore[arg-type]
