"""A version's tokenizer that panics on some texts only: a 500 in the error shape, the panic's
text in the log, and the worker answers the next request.

Found by the review of the ASCII twin: a normalizer ``Replace`` whose regex matches the empty
string (a space before each capital, ``(?=[A-Z])``) followed by NFC panics in tokenizers 0.23
on a text starting with a capital ("index out of bounds"); the version passed every load
check (its example starts lowercase), and the panic, a ``BaseException``, ended the request
with no answer.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.contract import ASSETS_DIR, MODEL_CARD_FILE, TOKENIZER_FILE
from serving.spec import SPEC_FILE
from tests.api.conftest import gateway_app
from tests.support.model_server import ModelServerHandle

SPACED = {"type": "Replace", "pattern": {"Regex": "(?=[A-Z])"}, "content": " "}
LOWER = {"article": "mary went to the kitchen.", "question": "where is mary?"}
CAPITAL = {"article": "Mary went to the kitchen.", "question": "where is mary?"}


@pytest.fixture(scope="module")
def panicking_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The gateway reads the tokenizer from this copy; the model server serves tiny_repo's
    # SavedModels, the same ones.
    repo = Path(shutil.copytree(tiny_repo, tmp_path_factory.mktemp("panics") / "repo"))
    assets = repo / "qa" / "1" / ASSETS_DIR
    data = json.loads((assets / TOKENIZER_FILE).read_text())
    steps = [SPACED, {"type": "NFC"}, data["normalizer"]]
    data["normalizer"] = {"type": "Sequence", "normalizers": steps}
    (assets / TOKENIZER_FILE).write_text(json.dumps(data))
    (assets / MODEL_CARD_FILE).unlink(missing_ok=True)  # its hash is the original file's
    spec = json.loads((assets / SPEC_FILE).read_text())
    spec["example"] = {key: str(value).lower() for key, value in spec["example"].items()}
    (assets / SPEC_FILE).write_text(json.dumps(spec))
    return repo


@pytest.fixture
def panicking_client(panicking_repo: Path, model_server: ModelServerHandle) -> Iterator[Any]:
    with gateway_app(panicking_repo, model_server.grpc_target, models=["qa"]) as app:
        yield app.test_client()


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/qa", CAPITAL), ("/v1/models/qa:predict", {"inputs": CAPITAL})],
)
def test_a_text_the_tokenizer_panics_on_is_a_500(
    panicking_client: Any, gateway_log: io.StringIO, path: str, body: dict[str, Any]
) -> None:
    assert panicking_client.get("/readyz").status_code == 200
    answer = panicking_client.post(path, json=body)
    assert answer.status_code == 500
    assert answer.json == {
        "error": "the model's tokenizer failed on this request's text",
        "detail": [],
    }
    assert "index out of bounds" not in answer.get_data(as_text=True)
    logged = [json.loads(line) for line in gateway_log.getvalue().splitlines()]
    panics = [line for line in logged if "tokenizer panicked" in line["message"]]
    assert panics and "index out of bounds" in panics[0]["message"]
    assert panics[0]["request_id"] == answer.headers["X-Request-ID"]
    # The same worker answers the next request, and a text the file reads.
    lower = LOWER if path == "/v1/qa" else {"inputs": LOWER}
    assert panicking_client.post(path, json=lower).status_code == 200
