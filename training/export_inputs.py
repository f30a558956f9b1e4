"""The tokenizers :func:`training.export.export_for_serving` is given (paths or
``tokenizers.Tokenizer`` objects), as files and as loaded tokenizers; each refusal names the
entry at fault, where the tokenizers library's own errors named neither the file nor the
argument. The other arguments are checked in :mod:`training.export_arguments`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from tokenizers.implementations.base_tokenizer import BaseTokenizer

from serving.tokenization import load_tokenizer


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
