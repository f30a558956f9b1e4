"""Compile ``serving/protos/*.proto`` into ``*_pb2.py`` and ``*_pb2.pyi`` (``make protos``).

The generated files are committed; a unit test re-runs this compiler into a temporary folder
and checks that the committed files are current.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

PROTO_DIR = Path(__file__).resolve().parent
ROOT = PROTO_DIR.parents[1]


def proto_files() -> list[Path]:
    """The ``.proto`` sources, sorted."""
    return sorted(PROTO_DIR.glob("*.proto"))


def compile_protos(out_dir: Path) -> None:
    """Write ``serving/protos/<name>_pb2.py`` and ``.pyi`` below ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # Well-known types (any.proto, wrappers.proto) ship inside grpc_tools.
    well_known = resources.files("grpc_tools") / "_proto"
    # The mypy plugin sits beside the interpreter; PATH may not include the virtualenv.
    plugin = Path(sys.executable).parent / "protoc-gen-mypy"
    arguments = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={plugin}",
        f"--proto_path={ROOT}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        *(str(path.relative_to(ROOT)) for path in proto_files()),
    ]
    status = protoc.main(arguments)
    if status != 0:
        raise RuntimeError(f"protoc failed with status {status}")


def main(argv: list[str] | None = None) -> int:
    """Compile the protos in place (or into ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT, help="root folder of the output")
    arguments = parser.parse_args(argv)
    compile_protos(arguments.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
