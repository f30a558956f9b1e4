"""Which models the gateway routes: the names in ``models.config``, optionally filtered."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from serving.contract import MODELS_CONFIG_FILE, parse_model_names, version_numbers

__all__ = ["config_model_names", "configured_models", "parse_model_names", "routed_models"]
PACKAGE = "gateway.catalog"


@functools.cache
def _server_config_class() -> Any:
    """TF Serving's ``ModelServerConfig`` reduced to ``model_config_list.config[].name``.

    Built here because the gateway has no TF Serving package; the other fields of the file
    (base_path, version policies, labels, ...) are skipped when parsing, not checked.
    """
    field = descriptor_pb2.FieldDescriptorProto
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="gateway_catalog.proto", package=PACKAGE, syntax="proto3"
    )
    model = file_proto.message_type.add(name="ModelConfig")
    model.field.add(name="name", number=1, type=field.TYPE_STRING)
    listing = file_proto.message_type.add(name="ModelConfigList")
    listing.field.add(
        name="config",
        number=1,
        type=field.TYPE_MESSAGE,
        type_name=f".{PACKAGE}.ModelConfig",
        label=field.LABEL_REPEATED,
    )
    server = file_proto.message_type.add(name="ModelServerConfig")
    server.field.add(
        name="model_config_list",
        number=1,
        type=field.TYPE_MESSAGE,
        type_name=f".{PACKAGE}.ModelConfigList",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{PACKAGE}.ModelServerConfig")
    )


def config_model_names(text: str) -> list[str]:
    """The model names of a ``models.config`` text, in order (duplicates once).

    Parsed as a text-format ``ModelServerConfig`` with protobuf's ``text_format``, as the model
    server reads it. Raises ValueError for a text that is not one (a file cut in the middle
    of a write, unbalanced braces), which the model server refuses too.
    """
    message = _server_config_class()()
    try:
        text_format.Parse(text, message, allow_unknown_field=True)
    except text_format.ParseError as error:
        raise ValueError(f"not a text-format ModelServerConfig: {error}") from error
    return list(dict.fromkeys(config.name for config in message.model_config_list.config))


def configured_models(repo: Path) -> list[str]:
    """Models named in ``repo/models.config``; without that file, folders holding versions.

    Raises ValueError for a ``models.config`` that is not UTF-8 or not a valid text proto
    (:func:`config_model_names`), OSError when it cannot be read.
    """
    config = repo / MODELS_CONFIG_FILE
    if config.is_file():
        return config_model_names(config.read_text(encoding="utf-8"))
    if not repo.is_dir():
        return []
    return sorted(child.name for child in repo.iterdir() if version_numbers(child))


def routed_models(repo: Path, only: Sequence[str]) -> tuple[str, ...]:
    """The configured models, keeping only those in ``only`` when it is not empty."""
    names = configured_models(repo)
    return tuple(name for name in names if not only or name in only)
