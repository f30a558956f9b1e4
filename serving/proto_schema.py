"""Protobuf message classes declared in code, for TF Serving's text config files.

The gateway and the launchers have no TF Serving package, and TF Serving's pip package ships
no Python classes for ``BatchingParameters`` or ``MonitoringConfig``; both sides declare the
fields they read with a ``FileDescriptorProto`` and parse the files with protobuf's
``text_format``, as TF Serving does (``tensorflow_serving/config/*.proto`` give the field
names and numbers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

FIELD = descriptor_pb2.FieldDescriptorProto


def add_message_field(
    message: Any, name: str, number: int, type_name: str, *, repeated: bool = False
) -> None:
    """Add a field of message type ``type_name`` (fully qualified, leading dot) to ``message``."""
    message.field.add(
        name=name,
        number=number,
        type=FIELD.TYPE_MESSAGE,
        type_name=type_name,
        label=FIELD.LABEL_REPEATED if repeated else FIELD.LABEL_OPTIONAL,
    )


def message_class(
    file_proto: descriptor_pb2.FileDescriptorProto,
    full_name: str,
    dependencies: Iterable[bytes] = (),
) -> Any:
    """The class of message ``full_name`` from ``file_proto``, in a fresh descriptor pool.

    ``dependencies``: serialized descriptors of the files ``file_proto`` imports (e.g.
    ``wrappers_pb2.DESCRIPTOR.serialized_pb``), added to the pool first.
    """
    pool = descriptor_pool.DescriptorPool()
    for serialized in dependencies:
        pool.AddSerializedFile(serialized)
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
