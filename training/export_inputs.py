"""What :func:`training.export.export_for_serving` is given, checked before anything is
written: the model name, the spec (as the gateway reads it), the tokenizers (paths or
``tokenizers.Tokenizer`` objects, exactly the spec's files) and the extra assets' names. Each
refusal names the argument at fault; the tokenizers library's own errors named neither the
file nor the argument.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from tokenizers.implementations.base_tokenizer import BaseTokenizer

from serving import contract
from serving.spec import SPEC_FILE, ServingSpec, dump_spec
from serving.tokenization import load_tokenizer

# A model name is a folder name and a URL path segment: no dots (hidden staging folders),
# no slashes.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


def check_arguments(
    spec: ServingSpec, tokenizers: Mapping[str, object], name: str, extra: Mapping[str, object]
) -> None:
    """Refuse (``ValueError``) a model name outside :data:`MODEL_NAME_PATTERN`, a spec the
    gateway would refuse, tokenizers other than exactly the spec's files, and an extra asset
    that is no bare file name or takes a name the export writes."""
    if re.match(MODEL_NAME_PATTERN, name) is None:
        raise ValueError(f"model name {name!r} must match {MODEL_NAME_PATTERN}")
    # Checked as the gateway reads it: a spec changed with model_copy(update=...) skips
    # pydantic's checks (a signature_name of "" was exported, then served as serving_default).
    ServingSpec.model_validate_json(dump_spec(spec))  # ValidationError (a ValueError)
    needed = spec.tokenizer_files()
    if set(tokenizers) != set(needed):
        raise ValueError(f"tokenizers must map exactly {needed}, got {sorted(tokenizers)}")
    reserved = {SPEC_FILE, contract.MODEL_CARD_FILE, contract.WARMUP_FILE, *needed}
    for file in extra:
        if file in reserved or Path(file).name != file or file.startswith("."):
            raise ValueError(f"extra asset {file!r} must be a bare file name not in {reserved}")


def tokenizer_files(
    tokenizers: Mapping[str, Path | str | Tokenizer | BaseTokenizer], held: Path
) -> dict[str, Path]:
    """Each tokenizer as a file: a path as given, a ``tokenizers.Tokenizer`` saved in ``held``
    under its spec file name. Anything else is a ``TypeError`` naming the entry (a
    ``transformers`` fast tokenizer holds its ``tokenizers.Tokenizer`` as
    ``backend_tokenizer``)."""
    files = {}
    for file, given in tokenizers.items():
        if isinstance(given, Tokenizer | BaseTokenizer):  # BertWordPieceTokenizer and kin
            files[file] = held / file
            given.save(str(files[file]))
        elif isinstance(given, str | os.PathLike):
            files[file] = Path(given)
        else:
            inner = (
                " (its .backend_tokenizer is one)" if hasattr(given, "backend_tokenizer") else ""
            )
            raise TypeError(
                f"tokenizers[{file!r}] must be the path of a tokenizer.json or a "
                f"tokenizers.Tokenizer, not {type(given).__name__}{inner}"
            )
    return files


def given_tokenizer(file: str, path: Path) -> Any:
    """The tokenizer at ``path``; the tokenizers library's errors name neither the file nor the
    argument (``Exception: No such file or directory (os error 2)``, or ``expected value at
    line 1 column 1`` for a BERT ``vocab.txt``)."""
    if not path.is_file():
        raise FileNotFoundError(f"tokenizers[{file!r}]: {str(path)!r} is no file")
    try:
        return load_tokenizer(path)
    except Exception as error:  # the library raises bare Exceptions
        raise ValueError(
            f"tokenizers[{file!r}]: {str(path)!r} is not a tokenizers tokenizer.json "
            f"({error}); a Hugging Face model's is its tokenizer.json, not vocab.txt"
        ) from error
