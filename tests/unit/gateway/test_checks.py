"""Fit checks of a loaded version against the backend's signature and its example answer."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.contract import ASSETS_DIR, MODEL_CARD_FILE, TOKENIZER_FILE
from serving.gateway.backends import ModelMetadata, TensorSpec, VersionSelector
from serving.gateway.checks import check_fit
from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.runtime import UnfitVersionError, load_runtime
from serving.gateway.settings import GatewaySettings
from serving.tokenization import load_tokenizer
from tests.support.tokenizer_faults import PANICKING_POST_PROCESSOR

INT, FLOAT = TensorSpec("DT_INT32", (-1, -1)), TensorSpec("DT_FLOAT", (-1, 5))


@dataclass
class Backend:
    """A backend answering fixed metadata and outputs (the API tests use the real server)."""

    inputs: dict[str, TensorSpec] = field(
        default_factory=lambda: {"article_ids": INT, "question_ids": INT}
    )
    outputs: dict[str, TensorSpec] = field(default_factory=lambda: {"answer_probs": FLOAT})
    answer: Any = None
    failure: BackendFailure | None = None
    pad_sensitive: bool = False  # answers depend on how far the inputs are padded
    widths: list[int] = field(default_factory=list)  # article_ids columns of each predict
    signatures: tuple[str, ...] = ("serving_default",)
    asked: list[str] = field(default_factory=list)  # the signature each call named
    batch_reduced: bool = False  # ``answer`` as it is for any batch (a mean over axis 0)
    positions: int | None = None  # wider article_ids fail (a position table this long)
    calls: int = 0  # predictions made; a random backend answers each a little differently
    random: bool = False
    slow_from: int | None = None  # article_ids this wide or wider miss the call's deadline
    timeouts: list[float | None] = field(default_factory=list)  # each predict's deadline

    def model_metadata(
        self, model: str, selector: VersionSelector, request_id: str | None = None
    ) -> ModelMetadata:
        self.asked.append(selector.signature_name)
        if selector.signature_name not in self.signatures:
            return ModelMetadata(model, selector.version or 0, signatures=self.signatures)
        return ModelMetadata(
            model, selector.version or 0, self.inputs, self.outputs, self.signatures
        )

    def predict(
        self,
        model: str,
        selector: VersionSelector,
        inputs: Mapping[str, Any],
        request_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        self.asked.append(selector.signature_name)
        self.timeouts.append(timeout_seconds)
        if self.failure is not None:
            raise BackendError(self.failure, "tensorflow::Status raw text at /srv/models")
        rows, width = inputs["article_ids"].shape
        self.widths.append(width)
        if self.slow_from is not None and width >= self.slow_from:
            raise BackendError(BackendFailure.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if self.positions is not None and width > self.positions:
            raise BackendError(BackendFailure.INVALID_ARGUMENT, "indices[9] = 9 is not in [0, 9)")
        self.calls += 1
        if self.random:  # Monte Carlo dropout: another answer on each call
            shift = np.array([1.0, -1.0, 0.0, 0.0, 0.0]) * 0.01 * self.calls
            return {"answer_probs": np.full((rows, 5), 0.2) + shift}
        if self.pad_sensitive:  # as a mean over every column would, pad ids included
            shift = np.array([1.0, -1.0, 0.0, 0.0, 0.0]) * 0.001 * width
            return {"answer_probs": np.full((rows, 5), 0.2) + shift}
        if self.answer is None:
            return {"answer_probs": np.full((rows, 5), 0.2)}
        # One row per instance, unless the answer is batch_reduced: one row whatever the batch.
        return {
            "answer_probs": self.answer if self.batch_reduced else np.repeat(self.answer, rows, 0)
        }

    def model_status(self, model: str, request_id: str | None = None) -> list[Any]:
        return []

    def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def qa(tiny_repo: Path):
    return load_runtime(tiny_repo, "qa", 1, GatewaySettings())


def test_a_fitting_version_passes(qa) -> None:
    backend = Backend()
    check_fit(backend, qa)
    # metadata, the example, a row of max_tokens ids per input, the example padded further
    assert backend.asked == [qa.spec.signature_name] * 5
    longest = [item.max_tokens for item in qa.spec.inputs]
    assert backend.widths[1] == longest[0]  # article_ids at max_tokens, then question_ids


@pytest.mark.parametrize("dtype", ["DT_HALF", "DT_BFLOAT16", "DT_DOUBLE"])
def test_a_float_output_of_any_width_fits(qa, dtype) -> None:
    # A mixed-precision model saved without export_for_serving (which casts to float32) has
    # DT_HALF or DT_BFLOAT16 heads: they were refused ("must be DT_FLOAT") while the export
    # serves the same model; both read a head's values whatever their float width.
    check_fit(Backend(outputs={"answer_probs": TensorSpec(dtype, (-1, 5))}), qa)
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(Backend(outputs={"answer_probs": TensorSpec("DT_STRING", (-1, 5))}), qa)
    assert "answer_probs is DT_STRING" in caught.value.reason


def test_a_model_whose_answers_change_with_padding_is_unfit(qa) -> None:
    backend = Backend(pad_sensitive=True)
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(backend, qa)
    assert "changes when the inputs are padded further with pad_id 0" in caught.value.reason
    # the padded call (after the example and the two max_tokens rows) had more columns, none
    # past the input's max_tokens
    assert backend.widths[0] < backend.widths[3] <= qa.spec.inputs[0].max_tokens


def test_a_left_padded_input_whose_answers_move_is_told_of_a_fixed_length(qa) -> None:
    # As at export: "the model must mask the padding" did not say that a left-padded text
    # starts later in a longer batch, which a model reading positions sees.
    article = qa.spec.inputs[0].model_copy(update={"padding": "left"})
    spec = qa.spec.model_copy(update={"inputs": [article, *qa.spec.inputs[1:]]})
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(Backend(pad_sensitive=True), replace(qa, spec=spec))
    assert f"['{article.field}'] start later in a longer batch" in caught.value.reason
    assert "keras.Input((length,))" in caught.value.reason


def test_a_model_random_at_inference_is_unfit_for_its_randomness(qa) -> None:
    # Monte Carlo dropout (training=True in a subclassed call) masks its padding, yet was
    # refused as "changes when the inputs are padded further": the user was sent to fix
    # a padding mask that was right.
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(Backend(random=True), qa)
    assert "changes between two calls on the same ids" in caught.value.reason
    assert "padded" not in caught.value.reason
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(Backend(pad_sensitive=True), qa)
    assert "padded further" in caught.value.reason


def test_the_specs_signature_is_the_one_checked_and_called(qa) -> None:
    renamed = replace(qa, spec=qa.spec.model_copy(update={"signature_name": "rate"}))
    backend = Backend(signatures=("rate", "serving_default"))
    check_fit(backend, renamed)
    assert backend.asked == ["rate"] * 5
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(Backend(signatures=("serving_default",)), renamed)
    assert "no signature 'rate'" in caught.value.reason
    assert "serving_default" in caught.value.reason


@pytest.mark.parametrize(
    ("backend", "reason"),
    [
        (Backend(inputs={"article_ids": INT}), "signature inputs differ"),
        (Backend(inputs={"article_ids": INT, "question_ids": FLOAT}), "must be DT_INT32"),
        (Backend(outputs={"answer_probs": TensorSpec("DT_INT64", (-1, 5))}), "is DT_INT64"),
        (Backend(answer=np.full((1, 4), 0.25)), "expected [2, 5]"),
        # one row for any batch: routed, then every request of 2 instances was a 502
        (Backend(answer=np.full((1, 5), 0.2), batch_reduced=True), "shape [1, 5], expected [2, 5]"),
        (Backend(answer=np.full((1, 5), np.nan)), "NaN"),
        # logits (a model trained with from_logits=True) were answered as probabilities
        # (found by two adversarial passes, anymodel and repo2: one shared check now)
        (Backend(answer=np.array([[2.0, -1.0, 0.5, 0.1, 0.0]])), "not probabilities in [0, 1]"),
        (Backend(answer=np.full((1, 5), 0.5)), "rows summing to 2.5-2.5, not 1"),
        (Backend(failure=BackendFailure.INVALID_ARGUMENT), "failed on the spec's example"),
    ],
)
def test_unfit_versions_get_short_reasons(qa, backend, reason) -> None:
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(backend, qa)
    assert reason in caught.value.reason
    assert "tensorflow" not in caught.value.reason and "/srv" not in caught.value.reason


def test_a_model_with_fewer_positions_than_max_tokens_is_unfit(qa) -> None:
    # A position table as long as the example: it fitted, and every longer text was a 502.
    fitting = Backend()
    check_fit(fitting, qa)
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(Backend(positions=fitting.widths[0]), qa)
    assert caught.value.reason.startswith(
        f"input 'article': the model fails on a row of max_tokens {qa.spec.inputs[0].max_tokens}"
        " ids (invalid_argument)"
    )
    assert "indices" not in caught.value.reason


def test_a_transient_failure_is_not_a_verdict(qa) -> None:
    with pytest.raises(BackendError):
        check_fit(Backend(failure=BackendFailure.UNAVAILABLE), qa)


def test_a_tokenizer_that_panics_on_the_example_makes_the_version_unfit(tiny_repo, tmp_path):
    # Found by the adversarial repo pass: a post-processor template naming a special token the
    # file does not define panics on each encode with special tokens; the panic is a
    # BaseException, so it went past every `except Exception` and ended the gateway's version
    # poller thread (no version of any model was checked or routed again in that worker).
    shutil.copytree(tiny_repo / "qa" / "1", tmp_path / "qa" / "1")
    assets = tmp_path / "qa" / "1" / ASSETS_DIR
    data = json.loads((assets / TOKENIZER_FILE).read_text())
    data["post_processor"] = PANICKING_POST_PROCESSOR
    (assets / TOKENIZER_FILE).write_text(json.dumps(data))
    (assets / MODEL_CARD_FILE).unlink()  # its recorded hash is the original file's
    # Since the anymodel3 pass, load_runtime refuses it (the export's check: the panic
    # escaped export_for_serving); the fit check stays the guard for what gets past it.
    with pytest.raises(UnfitVersionError, match="post-processor fails on every text"):
        load_runtime(tmp_path, "qa", 1, GatewaySettings())
    fit = load_runtime(tiny_repo, "qa", 1, GatewaySettings())
    files = fit.spec.tokenizer_files()
    runtime = replace(fit, tokenizers={name: load_tokenizer(assets / name) for name in files})
    with pytest.raises(UnfitVersionError, match="the spec's example cannot be tokenised"):
        check_fit(Backend(), runtime)
