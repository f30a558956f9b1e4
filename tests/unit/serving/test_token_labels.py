"""token_labels heads: which row positions label which words of the client's text, and the
answer read from a ``[tokens, labels]`` output (serving/token_labels.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from serving.encoding import encode_batch
from serving.gateway.heads import OutputError, head_answer, head_values
from serving.spec import ServingSpec, TextInput, TextsInput, TokenLabelsHead
from serving.token_labels import TokenWords, iob2_entities, token_answer, token_words

WORDS = ["hello", "world", "paris", ",", "!", "un", "##believ", "##able"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
HEAD = TokenLabelsHead(
    output="tags", field="tags", input_field="text", labels=LABELS, outside_label="O",
    scheme="IOB2",
)  # fmt: skip


@pytest.fixture(scope="module")
def wordpiece() -> Tokenizer:
    made = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    made.normalizer = normalizers.BertNormalizer(lowercase=True)
    made.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    made.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    made.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    return made


def item(max_tokens: int = 16, **changes: Any) -> TextInput:
    return TextInput(field="text", tensor="ids", max_tokens=max_tokens, vocab_size=64, **changes)


def units(tokenizer: Tokenizer, text: str, given: TextInput, head: TokenLabelsHead = HEAD) -> Any:
    words = token_words(tokenizer, text, given, head)
    return list(zip(words.texts, words.spans, words.positions, strict=True)), words.truncated


def test_words_are_pre_tokenizer_pieces_labelled_at_their_first_sub_token(wordpiece) -> None:
    text = "Hello,  unbelievable!   Paris"
    found, truncated = units(wordpiece, text, item())
    assert found == [
        ("Hello", (0, 5), 1), (",", (5, 6), 2), ("unbelievable", (8, 20), 3),
        ("!", (20, 21), 6), ("Paris", (24, 29), 7),
    ]  # fmt: skip
    assert truncated is False
    each = HEAD.model_copy(update={"aggregation": "none"})
    found, _ = units(wordpiece, "unbelievable", item(), each)
    assert found == [("un", (0, 2), 1), ("believ", (2, 8), 2), ("able", (8, 12), 3)]


def test_without_special_tokens_the_first_position_is_the_first_word(wordpiece) -> None:
    found, _ = units(wordpiece, "hello world", item(add_special_tokens=False))
    assert found == [("hello", (0, 5), 0), ("world", (6, 11), 1)]


@pytest.mark.parametrize("repeats", [3, 3000])  # 3000: a window of the text is tokenised
def test_tokens_past_the_row_are_not_labelled_and_the_answer_says_so(wordpiece, repeats) -> None:
    text = "hello world " * repeats + "paris !"
    found, truncated = units(wordpiece, text, item(6))
    assert found == [
        ("hello", (0, 5), 1), ("world", (6, 11), 2), ("hello", (12, 17), 3), ("world", (18, 23), 4)
    ]  # fmt: skip
    assert truncated is True
    found, truncated = units(wordpiece, text, item(6, truncation="left"))
    end = len(text)
    assert found == [
        ("hello", (end - 19, end - 14), 1), ("world", (end - 13, end - 8), 2),
        ("paris", (end - 7, end - 2), 3), ("!", (end - 1, end), 4),
    ]  # fmt: skip
    assert truncated is True
    assert all(text[s:e] == w for w, (s, e), _ in found)


def test_the_encoding_the_gateway_made_gives_the_same_words(wordpiece) -> None:
    spec = ServingSpec(title="t", inputs=[item(8)], heads=[HEAD], example={"text": "hello"})
    texts = ["Hello,  world", "hello world " * 2000, "日本 paris"]
    encoded = encode_batch(spec, {"tokenizer.json": wordpiece}, [{"text": t} for t in texts])
    for text, window in zip(texts, encoded.encodings["text"], strict=True):
        made = token_words(wordpiece, text, spec.inputs[0], HEAD, window)
        assert made == token_words(wordpiece, text, spec.inputs[0], HEAD)


def test_a_byte_level_token_keeps_no_space_in_its_word() -> None:
    made = Tokenizer(models.BPE())
    made.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    made.train_from_iterator(["hello world, paris"] * 5, trainers.BpeTrainer(vocab_size=300))
    found, _ = units(made, "hello   world", item(add_special_tokens=False))
    assert [(w, s) for w, s, _ in found] == [("hello", (0, 5)), ("world", (8, 13))]


@pytest.mark.parametrize(
    "space", ["\u2003", "\u2028", "\u0085", "\u1680", "\u205f", "\u2009\u2009", "\u202f"]
)
def test_a_byte_level_token_of_unicode_whitespace_is_no_word(space: str) -> None:
    """ByteLevel makes a token of a whitespace run (``\\s+(?!\\S)``): one of U+2003 EM SPACE,
    U+2028, NEL... was answered as a labelled word (and could open or join an entity), as only
    eight whitespace characters were trimmed. Every Unicode White_Space character is now."""
    made = Tokenizer(models.BPE())
    made.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    every_byte = pre_tokenizers.ByteLevel.alphabet()  # as GPT-2's: no byte is unknown
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=every_byte)
    made.train_from_iterator(["hello world, paris"] * 5, trainer)
    text = f"hello{space}{space} world"
    found, _ = units(made, text, item(add_special_tokens=False))
    start = text.index("world")
    assert [(w, s) for w, s, _ in found] == [("hello", (0, 5)), ("world", (start, start + 5))]


def rows(labels: list[str], width: int = 8) -> Any:
    """One-hot-ish ``[width, labels]`` rows: position i + 1 most probable for labels[i]."""
    values = np.full((width, len(LABELS)), 0.05)
    for position, label in enumerate(labels, start=1):
        values[position, LABELS.index(label)] = 0.8
    return values


def test_the_answer_leaves_out_outside_words_and_groups_iob2_spans(wordpiece) -> None:
    text = "Mary Ann went to  Paris Paris"
    words = token_words(wordpiece, text, item(), HEAD)
    answer = token_answer(HEAD, rows(["B-PER", "I-PER", "O", "O", "I-LOC", "B-LOC"]), words)
    assert [w["text"] for w in answer["words"]] == ["Mary", "Ann", "Paris", "Paris"]
    assert answer["words"][0] == {
        "text": "Mary", "start": 0, "end": 4, "label": "B-PER", "score": 0.8
    }  # fmt: skip
    assert [(e["text"], e["label"], e["start"], e["end"]) for e in answer["entities"]] == [
        ("Mary Ann", "PER", 0, 8), ("Paris", "LOC", 18, 23), ("Paris", "LOC", 24, 29)
    ]  # fmt: skip
    assert answer["truncated"] is False


@pytest.mark.parametrize(
    ("labels", "spans"),
    [
        (["I-PER", "I-PER"], [("PER", 0, 2)]),  # I- after nothing starts one
        (["B-PER", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),  # another type: another span
        (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
        (["B-PER", "O", "I-PER"], [("PER", 0, 1), ("PER", 2, 3)]),
        (["O", "O"], []),
    ],
)
def test_iob2_grouping(labels: list[str], spans: list[tuple[str, int, int]]) -> None:
    unit_list = [
        {"text": "x", "start": index, "end": index + 1, "label": label, "score": 1.0}
        for index, label in enumerate(labels)
    ]
    source = TokenWords((), (), (), "x" * len(labels), False)
    found = iob2_entities(unit_list, "O", source)
    assert [(e["label"], e["start"], e["end"]) for e in found] == spans


def test_a_row_longer_than_the_output_is_a_server_fault_not_a_wrong_answer(wordpiece) -> None:
    words = token_words(wordpiece, "hello world paris", item(), HEAD)
    with pytest.raises(OutputError, match="token positions"):
        head_answer(HEAD, rows([], width=3)[np.newaxis], 0, None, words)
    with pytest.raises(OutputError, match=r"expected \[1, tokens, 5\]"):
        head_values({"tags": np.zeros((1, 5))}, HEAD, 1)
    with pytest.raises(OutputError, match="NaN"):
        head_values({"tags": np.full((1, 4, 5), np.nan)}, HEAD, 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"outside_label": "N"}, "outside_label must be one of labels"),
        ({"outside_label": None}, "scheme IOB2 needs outside_label"),
        ({"labels": ["O", "PER", "B-LOC"]}, r"labels \['PER'\] are not B-X or I-X"),
        ({"labels": ["O", "O"]}, "duplicate label"),
        # answered entities labelled "": B- and I- alone were taken as a type
        ({"labels": ["O", "B-", "I-", "B-PER"]}, r"labels \['B-', 'I-'\] name no entity type"),
        ({"labels": ["O", "B- ", "I-PER"]}, "name no entity type"),
    ],
)
def test_a_token_head_of_contradicting_parts_is_refused(changes: dict[str, Any], message: str):
    with pytest.raises(ValidationError, match=message):
        TokenLabelsHead.model_validate({**HEAD.model_dump(), **changes})


def test_a_token_head_must_label_a_text_input() -> None:
    posts = TextsInput(field="text", tensor="ids", max_tokens=8, vocab_size=64, separator="|")
    with pytest.raises(ValidationError, match="input_field must name a text input"):
        ServingSpec(title="t", inputs=[posts], heads=[HEAD], example={"text": ["a"]})


def test_a_token_head_of_a_misspelt_input_field_names_the_text_inputs() -> None:
    # Found by newuser7: input_field="text" beside an input "review" was told only
    # "input_field must name a text input".
    review = TextInput(field="review", tensor="ids", max_tokens=8, vocab_size=64)
    posts = TextsInput(field="posts", tensor="p", max_tokens=8, vocab_size=64, separator="|")
    example = {"review": "a", "posts": ["a"]}
    for field, found in (("text", "no input field"), ("posts", "a list input")):
        head = HEAD.model_copy(update={"input_field": field})
        with pytest.raises(ValidationError, match=rf"'{field}' is {found}.*inputs: \['review'\]"):
            ServingSpec(title="t", inputs=[review, posts], heads=[head], example=example)


def test_a_special_token_spelt_by_the_client_is_labelled_as_its_plain_text(wordpiece) -> None:
    # The model reads "[SEP]" in a text as characters (serving.literals), so its words are
    # labelled like any other; only the post-processor's own [CLS]/[SEP] are not.
    text = "hello [SEP] world"
    found, _ = units(wordpiece, text, item())
    assert [(w, s) for w, s, _ in found] == [
        ("hello", (0, 5)), ("[", (6, 7)), ("SEP", (7, 10)), ("]", (10, 11)), ("world", (12, 17))
    ]  # fmt: skip
    assert [p for _, _, p in found] == [1, 2, 3, 4, 5]


def test_the_answer_is_strict_json(wordpiece) -> None:
    import json

    words = token_words(wordpiece, "Mary  went", item(), HEAD)
    answer = token_answer(HEAD, rows(["B-PER", "B-LOC"]), words)
    assert json.loads(json.dumps(answer, allow_nan=False)) == answer


@pytest.mark.parametrize(
    "processor",
    [
        processors.TemplateProcessing(
            single="[CLS] [SEP] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        ),
        processors.RobertaProcessing(("[SEP]", 3), ("[CLS]", 2)),
        processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2)),
        None,
    ],
)
def test_row_positions_are_those_the_post_processor_gives(wordpiece, processor) -> None:
    made = Tokenizer.from_str(wordpiece.to_str())
    made.post_processor = processor
    text = "hello,  unbelievable world " * 3
    for given in (item(), item(add_special_tokens=False), item(6, truncation="left")):
        words = token_words(made, text, given, HEAD.model_copy(update={"aggregation": "none"}))
        encoding = made.encode(text, add_special_tokens=False)
        encoding.truncate(len(words.positions), direction=given.truncation)
        row = made.post_process(encoding, None, given.add_special_tokens)
        assert list(words.positions) == [
            index for index, special in enumerate(row.special_tokens_mask) if not special
        ]
