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
from serving.spec_tokenizers import unservable_reason
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


@pytest.mark.parametrize("invisible", ["\ufeff", "\u200b", "\u00ad", "\u2060\u200d"])
def test_a_byte_level_token_of_format_characters_is_no_word(invisible: str) -> None:
    """ByteLevel makes a word of a run of format characters (category Cf): a BOM before the
    text or a U+200B between words was answered as a labelled word no one sees. A flag's
    tag characters (Cf too) after its emoji stay in its word."""
    made = Tokenizer(models.BPE())
    made.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    every_byte = pre_tokenizers.ByteLevel.alphabet()
    made.train_from_iterator(["hello world"] * 5, trainers.BpeTrainer(initial_alphabet=every_byte))
    text = f"{invisible}hello {invisible} world"
    found, _ = units(made, text, item(add_special_tokens=False))
    assert [w for w, _, _ in found] == ["hello", "world"]
    flag = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    found, _ = units(made, f"hello {flag}", item(64, add_special_tokens=False))  # 30 tokens
    assert [w for w, _, _ in found] == ["hello", flag]


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
    source = TokenWords((), (), (), "x" * len(labels), 0, False)
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


@pytest.mark.parametrize("repeats", [1, 3000])  # 3000: a window of the text is tokenised
@pytest.mark.parametrize(("truncation", "kept"), [("right", "hello"), ("left", "world")])
def test_a_word_cut_by_truncation_is_not_answered(wordpiece, repeats, truncation, kept) -> None:
    """[CLS] + 2 tokens of "hello unbelievable world": a left cut kept ``##able world`` and
    answered "able" with the label of ``##able`` (a later sub-token's, not the word's first);
    a right cut kept ``hello un`` and answered "un", a fragment, as a word of the text."""
    text = " ".join(["hello unbelievable world"] * repeats)
    found, truncated = units(wordpiece, text, item(4, truncation=truncation))
    assert [w for w, _, _ in found] == [kept]
    assert truncated is True
    each = HEAD.model_copy(update={"aggregation": "none"})  # tokens: none is cut in two
    found, _ = units(wordpiece, text, item(4, truncation=truncation), each)
    assert [w for w, _, _ in found] == (
        ["hello", "un"] if truncation == "right" else ["able", "world"]
    )


def test_a_metaspace_word_cut_by_truncation_is_not_answered() -> None:
    made = Tokenizer(models.Unigram())
    made.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=30, unk_token="<unk>", special_tokens=["<unk>"])
    made.train_from_iterator(["hello world paris"] * 20, trainer)  # too few pieces: letters
    found, _ = units(
        made, "hello world paris", item(3, truncation="left", add_special_tokens=False)
    )
    assert found == []  # "ris" of paris was answered
    found, _ = units(made, "hello world  paris", item(14, add_special_tokens=False))
    assert [w for w, _, _ in found] == ["hello", "world"]  # "p" of paris was answered


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Jose\u0301 went", [("Jose\u0301", (0, 5)), ("went", (6, 10))]),
        ("hello Jose\u0301", [("hello", (0, 5)), ("Jose\u0301", (6, 11))]),
        ("\u2764\ufe0f paris", [("\u2764\ufe0f", (0, 2)), ("paris", (3, 8))]),
        ("paris\u0301\u0302!", [("paris\u0301\u0302", (0, 7)), ("!", (7, 8))]),
    ],
)
def test_a_word_keeps_the_combining_marks_after_it(wordpiece, text, found) -> None:
    """The BERT normalizer strips accents (a mark is no token's character), so a decomposed
    "Jose\u0301" was the word "Jose" (end 4), its accent outside every span; VS16 after an
    emoji likewise. A mark belongs to the character before it (UAX #29 grapheme clusters)."""
    words = token_words(wordpiece, text, item(), HEAD)
    assert list(zip(words.texts, words.spans, strict=True)) == found
    answer = token_answer(HEAD, rows(["B-PER", "I-PER"]), words)
    assert answer["entities"][0]["text"] == text[: found[1][1][1]]


@pytest.mark.parametrize("split", [None, False])  # no pre-tokenizer (Llama's), Metaspace's
def test_a_first_head_over_a_tokenizer_that_splits_no_words_is_refused(split) -> None:
    """Every token of such a tokenizer has word id 0: "hello world paris" was one word
    labelled with its first token's label. Refused at export and by the gateway (one check);
    ``aggregation: none`` reads tokens and is served."""
    made = Tokenizer(models.Unigram())
    if split is None:
        made.normalizer = normalizers.Sequence(
            [normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]
        )
    else:
        made.pre_tokenizer = pre_tokenizers.Metaspace(split=split)
    pieces = ["<pad>", "<unk>"]
    trainer = trainers.UnigramTrainer(vocab_size=30, unk_token="<unk>", special_tokens=pieces)
    made.train_from_iterator(["hello world paris"] * 20, trainer)
    spec = ServingSpec(title="t", inputs=[item()], heads=[HEAD], example={"text": "hello world"})
    assert "splits no words" in (unservable_reason(spec, {"tokenizer.json": made}) or "")
    each = HEAD.model_copy(update={"aggregation": "none"})
    spec = spec.model_copy(update={"heads": [each]})
    assert unservable_reason(spec, {"tokenizer.json": made}) is None
