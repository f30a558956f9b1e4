"""token_labels heads at the edges of words: a word cut in two by truncation, combining marks
after a word, invisible format characters, tokenizers that split no words
(serving/token_labels.py, serving/spec_tokenizers.py)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from serving.spec import ServingSpec
from serving.spec_tokenizers import unservable_reason
from serving.token_labels import token_answer, token_words
from tests.unit.serving.test_token_labels import HEAD, item, rows, units, wordpiece

__all__ = ["wordpiece"]  # the fixture, shared


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


@pytest.mark.parametrize("aggregation", ["first", "none"])
def test_byte_level_marks_after_a_word_are_in_its_span(aggregation: str) -> None:
    """ByteLevel's regex splits a decomposed "Jose\u0301" into the words "Jose" and
    "\u0301": the accent was answered as a word of its own. Marks alone right after a unit
    join it (not after a space: there they are what the client wrote)."""
    made = Tokenizer(models.BPE())
    made.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    every_byte = pre_tokenizers.ByteLevel.alphabet()
    made.train_from_iterator(["Jose went"] * 5, trainers.BpeTrainer(initial_alphabet=every_byte))
    head = HEAD.model_copy(update={"aggregation": aggregation})
    found, _ = units(made, "Jose\u0301\u0301 went \u0301", item(64, add_special_tokens=False), head)
    # "none": each of the marks' two byte tokens was a unit of its own too
    assert [w for w, _, _ in found] == ["Jose\u0301\u0301", "went", "\u0301"]
    assert [p for _, _, p in found][:1] == [0]  # the word's label: its first token's
