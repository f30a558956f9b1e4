"""One model version as the gateway serves it, built from its serving spec when loaded.

:class:`ModelRuntime` is the one unit every model kind goes through (MLServer's runtime per
model; KServe's preprocess / predict / postprocess): its generated request models validate a
body, :meth:`ModelRuntime.preprocess` turns instances into the signature's int32 id tensors
with the version's own tokenizers (:func:`serving.encoding.encode_instances`), and
:meth:`ModelRuntime.postprocess` turns the float32 outputs into one readable value per head.
The backend call between the two is the caller's (it pins this runtime's version).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from tokenizers import Tokenizer

from serving import contract
from serving.encoding import Encoded, Tensors, encode_batch
from serving.gateway.alias_heads import alias_problem
from serving.gateway.asset_checks import (
    MAX_TOKENIZER_BYTES,
    AssetsUnreadableNowError,
    check_exported_hashes,
    read_asset,
)
from serving.gateway.asset_checks import UnfitVersionError as UnfitVersionError  # re-exported
from serving.gateway.heads import Answer, Outputs, head_answer, head_values
from serving.gateway.request_models import RequestModels, build_models
from serving.gateway.settings import GatewaySettings
from serving.gateway.spec_files import read_spec
from serving.literals import literal_spellings
from serving.spec import SegmentWeightsHead, ServingSpec, TokenLabelsHead
from serving.spec_outputs import head_labels, spec_wiring
from serving.spec_tokenizers import unservable_reason
from serving.token_labels import Spans, head_spans
from serving.tokenization import (
    TokenizerPanicError,
    panics_as_errors,
    parse_tokenizer,
)
from serving.windows import Encodings, Window

LOGGER = logging.getLogger("serving.gateway.runtime")
Instance = Mapping[str, Any]
Fingerprint = tuple[tuple[str, int, int], ...]
Segments = dict[str, list[Spans]]  # segment/token head field -> its spans per instance


@dataclass(frozen=True, eq=False)
class ModelRuntime:
    """A loaded version: spec, tokenizers (file name -> tokenizer) and generated models."""

    model: str
    version: int
    spec: ServingSpec
    tokenizers: Mapping[str, Tokenizer]
    tokenizer_sha256: Mapping[str, str]
    models: RequestModels
    settings: GatewaySettings
    legacy: bool = False
    span_heads: tuple[SegmentWeightsHead | TokenLabelsHead, ...] = field(default=())

    @functools.cached_property
    def alias_problem(self) -> str | None:
        """:func:`serving.gateway.alias_heads.alias_problem` of this version, once per version
        (an alias request reads it)."""
        return alias_problem(self.model, self.spec)

    def preprocess(self, instances: Sequence[Instance]) -> Tensors:
        """Signature inputs: int32 ``[len(instances), longest]`` per input tensor."""
        return self.encode(instances).tensors

    def encode(self, instances: Sequence[Instance], known: Encodings | None = None) -> Encoded:
        """:meth:`preprocess` with the cut encodings of the inputs segment heads read (for
        :meth:`segments`).

        ``known``: encodings validation already made (:func:`serving.encoding.encode_batch`).
        """
        return encode_batch(self.spec, self.tokenizers, instances, known)

    def segments(
        self,
        instances: Sequence[Instance],
        encodings: Mapping[str, Sequence[Window]] | None = None,
    ) -> Segments:
        """Each segment or token head's spans per instance
        (:func:`serving.token_labels.head_spans`): head field -> one per instance.

        ``encodings`` (:attr:`serving.encoding.Encoded.encodings` of these instances) spare
        a second tokenisation. The gateway takes the slots before the model call, so a request
        waiting for the model holds these few strings, not its texts' whole encodings.
        """
        return {
            head.field: self._segments(head, instances, (encodings or {}).get(head.input_field))
            for head in self.span_heads
        }

    def postprocess(
        self,
        outputs: Outputs,
        instances: Sequence[Instance],
        top_ks: Sequence[int | None] | None = None,
        encodings: Mapping[str, Sequence[Window]] | None = None,
        segments: Segments | None = None,
        unshown: frozenset[str] = frozenset(),
    ) -> list[dict[str, Answer]]:
        """One ``{head field: readable value}`` per instance, in order.

        ``top_ks`` overrides each head's default number of candidates/segments per instance.
        ``segments`` (:meth:`segments` of these instances), else ``encodings`` (see there),
        spare the segment heads a second tokenisation of their text. ``unshown``: categorical
        head fields answered without their ``probabilities`` map (the caller shows none).
        Raises :class:`serving.gateway.heads.OutputError` for outputs that do not fit the spec.
        """
        rows = len(instances)
        top_ks = top_ks or [None] * rows
        values = {head.field: head_values(outputs, head, rows) for head in self.spec.heads}
        if segments is None:
            segments = self.segments(instances, encodings)
        no_segments: Spans = []
        return [
            {
                head.field: head_answer(
                    head,
                    values[head.field],
                    row,
                    top_ks[row],
                    segments[head.field][row] if head.field in segments else no_segments,
                    head.field not in unshown,
                )
                for head in self.spec.heads
            }
            for row in range(rows)
        ]

    def _segments(
        self,
        head: SegmentWeightsHead | TokenLabelsHead,
        instances: Sequence[Instance],
        encodings: Sequence[Window] | None,
    ) -> list[Spans]:
        item = self.spec.input(head.input_field)
        tokenizer = self.tokenizers[item.tokenizer]
        return [
            head_spans(
                head,
                tokenizer,
                str(instance[head.input_field]),
                item,
                encodings[row] if encodings is not None else None,
            )
            for row, instance in enumerate(instances)
        ]

    def describe(self) -> dict[str, Any]:
        """The spec as JSON, for ``GET /v1/models/<name>``."""
        return cast(dict[str, Any], json.loads(self.spec.model_dump_json()))


def assets_fingerprint(repo: Path, model: str, version: int) -> Fingerprint:
    """Name, size and ctime (ns) of each entry of the version's ``assets.extra/``, sorted.

    Changes when a file the runtime reads is added, replaced or removed (a copy landing, a
    fixed spec), or its permissions are fixed (``chmod`` moves the ctime, never the size or
    mtime: an unreadable spec made readable stayed unfit); empty when the folder is missing or
    unreadable.
    """
    versions = contract.model_dir(repo, model)
    folder = contract.version_dirs(versions).get(version, versions / str(version))
    entries = []
    try:
        with os.scandir(folder / contract.ASSETS_DIR) as found:
            for entry in found:
                try:
                    stat = entry.stat()
                except OSError:  # a dangling symlink: its name still counts
                    entries.append((entry.name, -1, -1))
                    continue
                entries.append((entry.name, stat.st_size, stat.st_ctime_ns))
    except OSError:
        return ()
    return tuple(sorted(entries))


def load_runtime(repo: Path, model: str, version: int, settings: GatewaySettings) -> ModelRuntime:
    """Read ``repo/model/version/assets.extra``: the spec (or legacy files) and tokenizers.

    Raises :class:`UnfitVersionError` for a missing or invalid spec, a missing tokenizer, a
    tokenizer other than the one ``model_card.json`` records, or inputs its tokenizers cannot
    serve (:func:`serving.spec_tokenizers.unservable_reason`, as at export: ids past the
    spec's ``vocab_size`` among them; details go to the log);
    :class:`AssetsUnreadableNowError` when the process cannot read a file now.
    """
    # By number, not str(version): "00000123" is version 123 (TF Serving's reading); in the
    # folder models.config names as the model's base_path.
    versions = contract.model_dir(repo, model)
    version_folder = contract.version_dirs(versions).get(version, versions / str(version))
    if (
        absent := contract.absent_version_reason(repo, versions, version_folder, version)
    ) is not None:
        raise UnfitVersionError(absent)
    folder = version_folder / contract.ASSETS_DIR
    spec, legacy = read_spec(folder, model, version)
    tokenizers: dict[str, Tokenizer] = {}
    hashes: dict[str, str] = {}
    for name in spec.tokenizer_files():
        if not (folder / name).is_file():  # a FIFO or device would block the worker on open
            raise UnfitVersionError(f"tokenizer {name} is missing or not a regular file")
        try:
            data = read_asset(folder / name, MAX_TOKENIZER_BYTES)
            with panics_as_errors():
                tokenizers[name] = parse_tokenizer(data.decode("utf-8"))
            hashes[name] = hashlib.sha256(data).hexdigest()  # of the bytes that were loaded
        except (UnfitVersionError, AssetsUnreadableNowError):
            raise
        except Exception as error:  # tokenizers raises a bare Exception for a bad file
            LOGGER.warning("%s v%d: cannot load tokenizer %s: %r", model, version, name, error)
            raise UnfitVersionError(f"tokenizer {name} cannot be loaded") from error
    check_exported_hashes(folder, model, version, hashes, head_labels(spec), spec_wiring(spec))
    _check_servable(spec, tokenizers, model, version, legacy)
    try:
        models = build_models(model, spec, settings, tokenizers)
    except Exception as error:  # pydantic refusing a generated model: not expected
        LOGGER.warning("%s v%d: no request model from the spec: %r", model, version, error)
        raise UnfitVersionError(
            "the spec's field names cannot be used as request fields"
        ) from error
    return ModelRuntime(
        model=model,
        version=version,
        spec=spec,
        tokenizers=tokenizers,
        tokenizer_sha256=hashes,
        models=models,
        settings=settings,
        legacy=legacy,
        span_heads=spec.span_heads(),
    )


def _check_servable(
    spec: ServingSpec, tokenizers: Mapping[str, Tokenizer], model: str, version: int, legacy: bool
) -> None:
    """Raise UnfitVersionError for inputs no request could be answered on (the export's
    check, with its reason: :func:`serving.spec_tokenizers.unservable_reason`; a legacy
    version's example is the gateway's, whose words its tokenizer need not know)."""
    try:
        with panics_as_errors():
            problem = unservable_reason(spec, tokenizers, owner_example=not legacy)
            if problem is None:
                for tokenizer in tokenizers.values():  # made at load, not on a request
                    literal_spellings(tokenizer)
    except TokenizerPanicError as error:
        LOGGER.warning(
            "%s v%d: a tokenizer panicked on the spec's inputs: %s", model, version, error
        )
        raise UnfitVersionError(
            "a tokenizer fails on the spec's inputs (the library panicked)"
        ) from error
    if problem is not None:
        raise UnfitVersionError(problem)
