"""Export a trained Keras model with its serving spec as a version TF Serving and the gateway load.

:func:`export_for_serving` writes ``repo/<name>/<version>/``: ``saved_model.pb`` and
``variables/`` (a ``serving_default`` signature with exactly the spec's tensors) and
``assets.extra/`` (tokenizers, ``serving_spec.json``, ``model_card.json``, ``summary.txt`` and
``model.png`` (where Graphviz is installed) and TF Serving's ``tf_serving_warmup_requests``).
It registers the model in ``repo/models.config``, which TF Serving and the local model server
re-read, so a new model is served without a restart. A version is written to a hidden staging
folder and renamed into place, so a half-written version is never visible, and an existing
version is never overwritten.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from tokenizers.implementations.base_tokenizer import BaseTokenizer

from serving import contract
from serving.encoding import Tensors, encode_instances
from serving.spec import SPEC_FILE, ServingSpec, dump_spec
from serving.spec_outputs import head_labels, spec_wiring
from serving.tokenization import file_sha256
from training.architecture import PLOT_FILE, SUMMARY_FILE, write_plot, write_summary
from training.export_arguments import (
    MODEL_NAME_PATTERN,
    check_arguments,
    check_version_and_warmup,
    output_folder_problem,
)
from training.export_inputs import given_tokenizer, tokenizer_files
from training.model_config import (
    BATCHING_PARAMETERS,
    GENERATED_MARKER,
    MONITORING_CONFIG,
    ModelConfigError,
    models_config_with,
    register_model,
    render_models_config,
)
from training.model_forms import functional
from training.saved_model import smoke_check, write_saved_model, write_warmup_requests
from training.spec_check import SpecMismatchError, check_model, float16_outputs

__all__ = [
    "BATCHING_PARAMETERS",
    "GENERATED_MARKER",
    "MODEL_NAME_PATTERN",
    "MONITORING_CONFIG",
    "ModelConfigError",
    "SpecMismatchError",
    "VersionExistsError",
    "export_for_serving",
    "next_version",
    "render_models_config",
    "warmup_batches",
]

WARMUP_BATCH_SIZES = (1, 2, 4)


class VersionExistsError(FileExistsError):
    """Raised when an export would overwrite an existing model version."""


def next_version(model_dir: Path) -> int:
    """One more than the highest existing version (1 for a new model)."""
    versions = contract.version_numbers(model_dir)
    return versions[-1] + 1 if versions else 1


def export_for_serving(
    model: Any,
    spec: ServingSpec,
    tokenizers: Mapping[str, Path | str | Tokenizer | BaseTokenizer],
    *,
    name: str,
    repo: Path | str,
    model_card: Mapping[str, Any] | None = None,
    extra_assets: Mapping[str, Path | str] | None = None,
    version: int | None = None,
    warmup_instances: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``repo/name/<version>/`` for a trained Keras model and return that folder.

    Args:
        model: a Keras functional (or ``Sequential``) model whose inputs are the spec's
            input tensors (int32 token ids ``[batch, length]``) and whose outputs include
            every head's output.
        spec: what the inputs and heads mean (``serving.spec.ServingSpec``).
        tokenizers: each tokenizer file name the spec uses (``spec.tokenizer_files()``) ->
            the ``tokenizer.json`` to copy under that name (a path), or a
            ``tokenizers.Tokenizer`` (or ``BertWordPieceTokenizer`` and the library's other
            implementations) to save under it.
        name: the model name (folder, ``models.config`` entry, URL segment).
        repo: the model repo folder (created if missing): the one that holds
            ``models.config``, not a model's folder.
        model_card: extra card fields; ``name``, ``version``, ``title``, ``signature`` and
            ``tokenizer_sha256`` (file -> hex sha256), ``labels`` (output -> its labels,
            in column order), ``input_tensors`` (field -> tensor) and ``head_outputs``
            (field -> output) are added.
        extra_assets: file name -> path of more files copied into ``assets.extra/``.
        version: the version number; default one more than the highest existing.
        warmup_instances: request instances besides ``spec.example`` for the warmup records
            (batches of 1, 2 and 4 instances, encoded by ``serving.encoding.encode_instances``
            as the gateway encodes requests).

    Raises:
        SpecMismatchError: the model or tokenizers do not fit the spec, or the written
            SavedModel gives an output of the wrong shape, or NaN/inf, for the example.
        VersionExistsError: the version exists (nothing is overwritten).
        ModelConfigError: a hand-edited ``models.config`` does not parse (checked first).
        FileNotFoundError: a tokenizer path that is no file.
        ValueError: a spec that breaks its own rules (pydantic's ValidationError naming
            the field: a spec edited with model_copy skips them), a bad name, a ``version``
            outside 0 to 2**63-1, a warmup instance that is no request instance of the spec
            (named by its index, as the spec's example is checked), missing or extra
            tokenizers, a tokenizer file that does not load, a reserved asset name, a
            ``repo`` where no folder can be made (a file, a read-only mount), or a
            ``repo`` that is a model's folder or a version folder
            (``serving.contract.repo_layout_problem``).
        TypeError: ``model`` is not a ``keras.Model``, ``spec`` not a ``ServingSpec``,
            ``warmup_instances`` not a list, or a tokenizer is neither a path nor a
            ``tokenizers.Tokenizer``.
    """
    check_arguments(spec, tokenizers, name, extra_assets or {})
    check_version_and_warmup(spec, version, warmup_instances)
    # A str repo was AttributeError "'str' object has no attribute 'parents'" (newuser7).
    repo = Path(repo)
    if (problem := output_folder_problem(repo / name)) is not None:  # before the model is checked
        raise ValueError(f"repo: {problem}")
    extra = {file: Path(path) for file, path in (extra_assets or {}).items()}
    # A Tokenizer in memory (found by newuser7: TypeError "expected str, bytes or
    # os.PathLike object, not Tokenizer", naming no argument) is saved, then read as a file.
    with tempfile.TemporaryDirectory(prefix="export-tokenizers-") as held:
        files = tokenizer_files(tokenizers, Path(held))
        return _write_version(
            model, spec, files, name, repo, model_card, extra, version, warmup_instances
        )


def _write_version(
    model: Any,
    spec: ServingSpec,
    tokenizers: Mapping[str, Path],
    name: str,
    repo: Path,
    model_card: Mapping[str, Any] | None,
    extra_assets: Mapping[str, Path] | None,
    version: int | None,
    warmup_instances: Sequence[Mapping[str, Any]],
) -> Path:
    """:func:`export_for_serving` once its arguments are checked (tokenizers as files)."""
    if (problem := contract.repo_layout_problem(repo)) is not None:
        raise ValueError(f"repo: {problem}")
    loaded = {file: given_tokenizer(file, Path(path)) for file, path in tokenizers.items()}
    # Sequential and subclassed models have no named inputs and outputs of their own.
    model = functional(model, spec)
    check_model(model, spec, loaded)
    models_config_with(repo, name)  # a broken hand-edited config fails before any write
    batches = warmup_batches(spec, loaded, warmup_instances)
    model_dir = repo / name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(model_dir) if version is None else version
    final_dir = model_dir / str(version)
    if final_dir.exists():
        raise VersionExistsError(f"{final_dir} exists; versions are never overwritten")
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{version}-", dir=model_dir))
    try:
        write_saved_model(model, spec, staging)
        # 2 instances: one row each
        smoke_check(staging, spec, batches[1], float16_outputs(model))
        assets = staging / contract.ASSETS_DIR
        assets.mkdir()
        for file, path in {**tokenizers, **(extra_assets or {})}.items():
            shutil.copyfile(path, assets / file)
        _write_architecture(model, assets, extra_assets or {})
        (assets / SPEC_FILE).write_text(dump_spec(spec))
        card = _card(spec, name, version, assets, model_card or {})
        (assets / contract.MODEL_CARD_FILE).write_text(_json(card))
        write_warmup_requests(assets / contract.WARMUP_FILE, name, spec.signature_name, batches)
        _rename(staging, final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    register_model(repo, name)
    return final_dir


def warmup_batches(
    spec: ServingSpec,
    tokenizers: Mapping[str, Tokenizer],
    instances: Sequence[Mapping[str, Any]] = (),
) -> list[Tensors]:
    """Signature inputs of batches of 1, 2 and 4 instances: the example, then ``instances``.

    The first batch is exactly ``encode_instances(spec, tokenizers, [spec.example])``.
    """
    pool = [spec.example, *instances]
    return [
        encode_instances(spec, tokenizers, [pool[index % len(pool)] for index in range(size)])
        for size in WARMUP_BATCH_SIZES
    ]


def _write_architecture(model: Any, assets: Path, given: Mapping[str, Path]) -> None:
    # The gateway serves and links summary.txt / model.png for every version, so a version
    # exported by a user's own script gets them too (model.png only where Graphviz is).
    if SUMMARY_FILE not in given:
        write_summary(model, assets / SUMMARY_FILE)
    if PLOT_FILE not in given:
        write_plot(model, assets / PLOT_FILE)


def _card(
    spec: ServingSpec, name: str, version: int, assets: Path, extra: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        **extra,
        "name": name,
        "version": version,
        "title": spec.title,
        "signature": {
            "name": spec.signature_name,
            "inputs": [item.tensor for item in spec.inputs],
            "outputs": [head.output for head in spec.heads],
        },
        "tokenizer_sha256": {file: file_sha256(assets / file) for file in spec.tokenizer_files()},
        # Each labelled output's labels, in column order: the gateway refuses a spec whose
        # labels are others (serving.gateway.asset_checks.check_exported_hashes).
        "labels": head_labels(spec),
        # Which tensor each field feeds or reads: the gateway refuses a spec that wires a
        # field to another one (two inputs' tensors swapped by hand, another spec copied in).
        **spec_wiring(spec),
    }


def _rename(staging: Path, final_dir: Path) -> None:
    if final_dir.exists():  # another exporter won the race for this number
        raise VersionExistsError(f"{final_dir} appeared during export")
    try:
        os.rename(staging, final_dir)
    except OSError as error:  # a non-empty folder appeared between the check and the rename
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise VersionExistsError(f"{final_dir} appeared during export") from error
        raise


def _json(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
