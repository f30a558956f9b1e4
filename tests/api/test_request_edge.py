"""Issue 8's request-edge cases, on every endpoint kind (generic ``:predict`` and aliases).

Body framing and size, content codings, strict types, texts without words, a backend that
rejects the gateway's ids, and strict JSON answers.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from typing import Any

import grpc
import pytest
from flask import jsonify

QA = {"article": "Mary went to the office. John went to the garden.", "question": "Where is Mary?"}
PROFILE = {"posts": ["I like hiking.", "Work was long today."]}
PAIR = {"text_a": "A man plays a guitar.", "text_b": "Someone plays music."}
# (path, a valid body) for each endpoint kind
VALID = [
    ("/v1/qa", QA),
    ("/v1/models/qa:predict", {"inputs": QA}),
    ("/v1/profile", PROFILE),
    ("/v1/models/profile:predict", {"inputs": PROFILE}),
    ("/v1/similarity", {"pairs": [PAIR]}),
    ("/v1/models/similarity:predict", {"inputs": PAIR}),
]
LIMIT = 2000


def _error(response, status: int) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    assert set(response.json) == {"error", "detail"}
    return response.json


def _chunked(client, path: str, body: bytes, **headers: str):
    """A body without Content-Length, as a WSGI server hands over a chunked one."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked", **headers},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.fixture
def small(app_factory):
    return app_factory(max_body_bytes=LIMIT).test_client()


@pytest.mark.parametrize(("path", "payload"), VALID)
def test_a_body_over_the_limit_is_413_whatever_the_framing(small, path, payload) -> None:
    padded = json.dumps(payload).encode() + b" " * LIMIT  # valid JSON once the limit cuts it
    string = json.dumps({**payload, "pad": "x" * LIMIT}).encode()  # cut: unterminated string
    for body in (padded, string):
        assert "max_body_bytes=2000" in _error(_chunked(small, path, body), 413)["error"]
        _error(small.post(path, data=body, content_type="application/json"), 413)


@pytest.mark.parametrize(("path", "payload"), VALID[:2])
def test_a_chunked_body_up_to_the_limit_is_read_whole(small, path, payload) -> None:
    body = json.dumps(payload).encode()
    exactly = body + b" " * (LIMIT - len(body))
    assert len(exactly) == LIMIT
    assert _chunked(small, path, exactly).status_code == 200
    _error(_chunked(small, path, exactly + b" "), 413)


@pytest.mark.parametrize(("path", "payload"), VALID)
@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "x-unknown", "identity, gzip"])
def test_encoded_bodies_are_415_naming_the_coding(client, path, payload, coding) -> None:
    body = gzip.compress(json.dumps(payload).encode())
    response = client.post(
        path, data=body, content_type="application/json", headers={"Content-Encoding": coding}
    )
    named = coding.split(", ")[-1]
    assert f"Content-Encoding {named!r}" in _error(response, 415)["error"]
    assert response.headers["Accept-Encoding"] == "identity"


CAFE = {**QA, "question": "Where is the café?"}
NOT_ASCII = [
    ("/v1/qa", CAFE),
    ("/v1/models/qa:predict", {"inputs": CAFE}),
    ("/v1/profile", {"posts": ["Un café, s'il vous plaît."]}),
]


@pytest.mark.parametrize(("path", "payload"), NOT_ASCII)
@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252", "utf-16"])
def test_a_body_in_another_charset_is_415_naming_it(client, path, payload, charset) -> None:
    # JSON is UTF-8 (RFC 8259 section 8.1): "é" sent as the one byte 0xE9 was a 400 quoting
    # Python's codec error. Refused naming the charset, never read as other text.
    body = json.dumps(payload, ensure_ascii=False).encode(charset)
    response = client.post(path, data=body, content_type=f"application/json; charset={charset}")
    assert f"charset {charset!r}" in _error(response, 415)["error"]


@pytest.mark.parametrize(
    ("charset", "payload"),
    [("ISO-8859-1", QA), ("us-ascii", QA), ("utf-8", CAFE), ("UTF8", CAFE)],
)
def test_a_declared_charset_that_reads_the_body_alike_is_accepted(client, charset, payload):
    # Clients labelling ASCII JSON ISO-8859-1 are common: every such charset reads it alike.
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    response = client.post("/v1/qa", data=body, content_type=f"application/json; charset={charset}")
    assert response.status_code == 200, response.get_json()


def test_identity_coding_is_accepted(client) -> None:
    response = client.post("/v1/qa", json=QA, headers={"Content-Encoding": "identity"})
    assert response.status_code == 200


@pytest.mark.parametrize("top_k", [True, False, "3", 2.5, None, [1]])
@pytest.mark.parametrize("path", ["/v1/qa", "/v1/models/qa:predict"])
def test_top_k_is_strictly_an_integer(client, path, top_k) -> None:
    body = {**QA, "top_k": top_k} if path == "/v1/qa" else {"inputs": QA, "top_k": top_k}
    if top_k is None and path != "/v1/qa":  # the generic form documents top_k as nullable
        assert client.post(path, json=body).status_code == 200
        return
    detail = _error(client.post(path, json=body), 422)["detail"]
    assert [item["loc"] for item in detail] == [["body", "top_k"]]


@pytest.mark.parametrize("path", ["/v1/qa", "/v1/models/qa:predict"])
def test_an_integral_number_is_an_integer(client, path) -> None:
    # JSON (and so JSON Schema's "integer", as documented) does not tell 2.0 from 2.
    body = {**QA, "top_k": 2.0} if path == "/v1/qa" else {"inputs": QA, "top_k": 2.0}
    answer = client.post(path, json=body)
    assert answer.status_code == 200
    candidates = answer.json["candidates" if path == "/v1/qa" else "outputs"]
    assert len(candidates if path == "/v1/qa" else candidates["answer"]["candidates"]) == 2


@pytest.mark.parametrize(
    "literal", ["1.9999999999999999999", "2.0000000000000000001", "1." + "9" * 5000]
)
@pytest.mark.parametrize("path", ["/v1/qa", "/v1/models/qa:predict"])
def test_a_fraction_rounding_to_a_whole_float_is_no_integer(client, path, literal) -> None:
    # Read as the float 2.0, the written number is not 2: refused as any other fraction.
    body = json.dumps({**QA} if path == "/v1/qa" else {"inputs": QA})
    body = body[:-1] + f', "top_k": {literal}}}'
    answer = client.post(path, data=body, content_type="application/json")
    assert [item["loc"] for item in _error(answer, 422)["detail"]] == [["body", "top_k"]]


@pytest.mark.parametrize("literal", ["2e0", "20000e-4", "2.000"])
def test_an_exactly_whole_written_number_is_an_integer(client, literal) -> None:
    body = json.dumps(QA)[:-1] + f', "top_k": {literal}}}'
    answer = client.post("/v1/qa", data=body, content_type="application/json")
    assert answer.status_code == 200
    assert len(answer.json["candidates"]) == 2


NO_WORDS = [
    "",
    "   ",
    "\u200b",
    "\u200b\u200c\ufeff",
    "\x01\x02",
    " \t\n\u00a0",
    "?!",
    "_",
    "\U0001f600",
    # the tokenizer's special tokens spelt out: ids that carry no word ([PAD] is masked out)
    "[PAD]",
    "[SEP]",
    " [PAD] [SEP]\u200b",
]


@pytest.mark.parametrize("text", NO_WORDS)
@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        ("/v1/qa", lambda t: {**QA, "question": t}, ["body", "question"]),
        ("/v1/qa", lambda t: {"instances": [QA, {**QA, "article": t}]},
         ["body", "instances", 1, "article"]),
        ("/v1/models/qa:predict", lambda t: {"inputs": {**QA, "question": t}},
         ["body", "inputs", "question"]),
        ("/v1/profile", lambda t: {"posts": [t]}, ["body", "posts", 0]),
        ("/v1/profile", lambda t: {"posts": ["fine", t]}, ["body", "posts", 1]),
        ("/v1/models/profile:predict", lambda t: {"instances": [{"posts": ["a", t]}]},
         ["body", "instances", 0, "posts", 1]),
        ("/v1/similarity", lambda t: {"pairs": [{**PAIR, "text_b": t}]},
         ["body", "pairs", 0, "text_b"]),
        ("/v1/models/similarity:predict", lambda t: {"inputs": {**PAIR, "text_a": t}},
         ["body", "inputs", "text_a"]),
    ],
)  # fmt: skip
def test_texts_without_words_are_422_with_their_path(client, text, path, body, location) -> None:
    detail = _error(client.post(path, json=body(text)), 422)["detail"]
    assert [item["loc"] for item in detail] == [location]
    assert detail[0]["type"] in ("no_words", "string_too_short")


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/qa", {**QA, "question": "zzqx qqzj?"}),
        ("/v1/models/qa:predict", {"inputs": {**QA, "question": "zzqx"}}),
        ("/v1/profile", {"posts": ["zzqx"]}),
        ("/v1/profile", {"posts": ["[UNK]", "zzqx [SEP]"]}),  # [UNK] stands for a word
        ("/v1/models/similarity:predict", {"inputs": {"text_a": "zzqx", "text_b": "qqzj"}}),
    ],
)
def test_texts_of_unknown_words_are_answered(client, path, payload) -> None:
    # Documented rule: unknown words become [UNK] ids, as in training; the text is answered.
    assert client.post(path, json=payload).status_code == 200


def test_a_backend_rejecting_the_ids_is_502_logged_with_the_request_id(
    app_factory, failing_server, gateway_log
) -> None:
    target = failing_server(grpc.StatusCode.INVALID_ARGUMENT)
    client = app_factory(target=target, retries=0).test_client()
    for path, payload in VALID:
        # version pinned: assets come from the repo, no status call to this fake server
        pinned = path.replace(":predict", "/versions/1:predict") if ":" in path else path
        response = client.post(
            pinned if ":" in path else f"{path}?version=1",
            json=payload,
            headers={"X-Request-ID": f"edge-{path}"},
        )
        body = _error(response, 502)
        assert "tensorflow" not in body["error"]
    logged = [json.loads(line) for line in gateway_log.getvalue().splitlines()]
    rejected = [entry for entry in logged if "invalid_argument" in entry["message"]]
    assert {entry["request_id"] for entry in rejected} >= {f"edge-{path}" for path, _ in VALID}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_answers_are_strict_json_and_a_non_finite_value_is_502(app_factory, value) -> None:
    app = app_factory()
    app.add_url_rule("/test-non-finite", "non_finite", lambda: jsonify({"score": value}))
    response = app.test_client().get("/test-non-finite")
    body = _error(response, 502)
    assert "NaN" not in response.get_data(as_text=True)
    assert "not finite" in body["error"]


@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        # the question keeps its first 8 tokens, the article its last 64 (tiny qa spec)
        ("/v1/qa", {**QA, "question": "? " * 20 + "Where is Mary?"}, ["body", "question"]),
        ("/v1/qa", {**QA, "article": "Mary went home. " + "! " * 100}, ["body", "article"]),
        ("/v1/models/qa:predict", {"inputs": {**QA, "question": "- " * 30 + "Mary"}},
         ["body", "inputs", "question"]),
    ],
)  # fmt: skip
def test_a_text_whose_words_the_cut_drops_is_422(client, path, body, location) -> None:
    # The model reads an input's first (or last) max_tokens tokens: the words past the cut
    # never reach it, and it answered from punctuation alone (200).
    detail = _error(client.post(path, json=body), 422)["detail"]
    assert [(item["loc"], item["type"]) for item in detail] == [(location, "no_words")]
    assert "max_tokens" in detail[0]["msg"]


@pytest.mark.parametrize(
    "body",
    [
        {**QA, "question": "Where is Mary " + "? " * 20},
        {**QA, "article": "! " * 100 + "Mary went home."},
        {**QA, "question": "[PAD] " * 3 + "Mary?"},
    ],
)
def test_a_text_whose_cut_keeps_a_word_is_answered(client, body) -> None:
    assert client.post("/v1/qa", json=body).status_code == 200
