"""worker_cost's reading of a callgrind file: self cost per shared object, calls skipped."""

from __future__ import annotations

from pathlib import Path

from loadtests.worker_cost import objects

CALLGRIND = """\
version: 1
events: Ir
ob=(1) /usr/lib/libpython3.11.so.1.0
fl=(1) ceval.c
fn=(1) _PyEval_EvalFrameDefault
10 100
+2 50
cob=(2) /venv/tokenizers.abi3.so
cfn=(2) encode
calls=1 0
12 7000
ob=(2)
fn=(2)
0 600
ob=(1)
fn=(3) other
* 5
totals: 755
"""


def test_self_cost_per_object_without_inclusive_call_costs(tmp_path: Path) -> None:
    path = tmp_path / "callgrind.out"
    path.write_text(CALLGRIND)
    assert objects(path) == {"libpython3.11.so.1.0": 155, "tokenizers.abi3.so": 600}
