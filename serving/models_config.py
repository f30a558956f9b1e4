"""Reading ``models.config`` (a text-format ``ModelServerConfig``) as TF Serving and the local
model server read it: its model names, and each ``config``'s name, base_path and platform.
Its only third-party import is protobuf, so every process can use it
(:mod:`serving.contract` finds a model's folder with it).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from google.protobuf import text_format

from serving.protos import models_config_pb2


class EmptyConfigError(ValueError):
    """A ``models.config`` that sets no ``model_config_list`` (an empty file, or only comments).

    What a file truncated to be rewritten (``>``, ``open(..., "w")``) reads as. TF Serving's
    ``ServerCore::ReloadConfig`` takes no action for such a config ("Taking no action for
    empty config") and keeps serving its models; only an explicit ``model_config_list {}``
    removes them all. At start it is a config without models.
    """


def parse_model_names(text: str, *, empty_ok: bool = True) -> list[str]:
    """The model names of a ``models.config`` text, in order.

    Parsed as a text-format ``ModelServerConfig`` with protobuf's ``text_format``, as the model
    server reads it. Raises ValueError for a text that is not one (a file cut in the middle
    of a write, unbalanced braces) or a model list the model server refuses
    (:func:`check_model_list`): the server keeps its last good config then, and so must its
    readers, or they route models it does not serve. An empty config (:class:`EmptyConfigError`)
    has no models when ``empty_ok`` (a start), else raises: a reader re-reading the file
    keeps its last good list then, as the server does.
    """
    try:
        return [name for name, _, _ in config_entries(text)]
    except EmptyConfigError:
        if empty_ok:
            return []
        raise


def check_model_list(entries: Sequence[tuple[str, str, str]]) -> None:
    """Raise ValueError for a model list the local model server refuses.

    ``entries``: each ``config``'s ``(name, base_path, model_platform)``. Refused: an entry
    without a name or a base_path, a platform other than ``tensorflow``, a name listed twice
    (TF Serving's ServerCore: "Illegal to list model ... multiple times in config list").
    """
    for name, base_path, platform in entries:
        if not name or not base_path:
            raise ValueError(
                f"model config needs a name and a base_path: name {name!r} base_path {base_path!r}"
            )
        if platform not in ("", "tensorflow"):
            raise ValueError(f"model {name}: only model_platform tensorflow is served")
    names = [name for name, _, _ in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate model names in config: {names}")


@functools.lru_cache(maxsize=8)
def config_entries(text: str) -> tuple[tuple[str, str, str], ...]:
    """Each ``config``'s ``(name, base_path, model_platform)`` of a ``models.config`` text.

    Cached by text: the gateway's version poller reads the file for every model every poll,
    and protobuf's pure-Python ``text_format`` took half of a poll's CPU. Raises ValueError
    (not cached) as :func:`parse_model_names` says, :class:`EmptyConfigError` for an empty config.
    """
    message = models_config_pb2.ModelServerConfig()
    try:
        # Every field TF Serving knows is declared: a misspelt one fails here as it fails the
        # model server, which then keeps its last good config (and so must its readers).
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise ValueError(f"not a text-format ModelServerConfig: {error}") from error
    if message.HasField("custom_model_config"):
        raise ValueError("custom_model_config is not supported; use model_config_list")
    if not message.HasField("model_config_list"):
        raise EmptyConfigError("models.config sets no model_config_list (empty)")
    entries = tuple(
        (item.name, item.base_path, item.model_platform)
        for item in message.model_config_list.config
    )
    check_model_list(entries)
    return entries
