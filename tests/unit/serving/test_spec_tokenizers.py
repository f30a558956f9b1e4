"""``unservable_reason``: inputs no request could be answered on, refused at export and unfit.

Each case was exported (or crashed the export) and, where routed, refused or failed every
request: a tokenizer without an unknown token made every request with a new word a 500; a
``max_tokens`` no larger than the special tokens left the model only [CLS]/[SEP] (every
request 422 ``no_words``, max_tokens 1 an OverflowError at export); an example whose cut keeps
no word was offered in /docs to be refused.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram, WordLevel, WordPiece

from serving.spec import (
    CategoricalHead,
    SegmentRule,
    SegmentWeightsHead,
    ServingSpec,
    TextInput,
    TextsInput,
)
from serving.spec_tokenizers import tokenizer_problem, unservable_reason

VOCAB = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "mary": 4, "went": 5, "home": 6}


def word_tokenizer(unknown: str | None = "[UNK]", special: bool = False) -> Tokenizer:
    vocab = VOCAB if unknown else {key: value for key, value in VOCAB.items() if key != "[UNK]"}
    built = Tokenizer(WordLevel(vocab, unk_token=unknown) if unknown else WordLevel(vocab))
    built.pre_tokenizer = pre_tokenizers.Whitespace()
    built.add_special_tokens(["[PAD]", "[CLS]", "[SEP]"])
    if special:  # a BERT-style post-processor: two ids around every text
        built.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
    return built


def spec_of(item: TextInput | TextsInput, example: Any) -> ServingSpec:
    return ServingSpec(
        title="t",
        inputs=[item],
        heads=[CategoricalHead(output="probs", field="label", labels=["a", "b"])],
        example={item.field: example},
    )


def text(max_tokens: int = 8, **options: Any) -> TextInput:
    return TextInput(
        field="text", tensor="text_ids", max_tokens=max_tokens, vocab_size=7, **options
    )


@pytest.mark.parametrize(
    "tokenizer",
    [
        word_tokenizer(unknown=None),
        Tokenizer(WordPiece({"[PAD]": 0, "mary": 1}, unk_token="[UNK]")),  # [UNK] not in vocab
        Tokenizer(Unigram([("[PAD]", 0.0), ("mary", -1.0)])),  # no unk_id
    ],
)
def test_a_tokenizer_that_fails_on_unknown_words(tokenizer: Tokenizer) -> None:
    reason = unservable_reason(spec_of(text(), "mary went home"), {"tokenizer.json": tokenizer})
    assert reason == tokenizer_problem("tokenizer.json", tokenizer)
    assert reason is not None and "fails on words outside its vocabulary" in reason


def test_a_tokenizer_with_an_unknown_token_passes() -> None:
    assert tokenizer_problem("tokenizer.json", word_tokenizer()) is None


def test_added_tokens_that_read_the_same_once_normalized_are_refused() -> None:
    # tokenizers keeps one of the two per load, by its hash map's order: "the acmecorp" was
    # [1, 4] or [1, 3] from one load of the same file to the next (found by a review of the
    # ASCII twin, which drew a second time).
    built = word_tokenizer()
    built.normalizer = normalizers.Lowercase()
    built.add_tokens([AddedToken("AcmeCorp", normalized=True), AddedToken("acmecorp")])
    reason = tokenizer_problem("tokenizer.json", built)
    assert reason is not None and "'AcmeCorp' and 'acmecorp' read the same" in reason
    assert unservable_reason(spec_of(text(), "mary went home"), {"tokenizer.json": built}) == (
        reason
    )
    apart = word_tokenizer()
    apart.normalizer = normalizers.Lowercase()
    # One matched as sent, the other in the normalized text: found in a fixed order.
    apart.add_tokens([AddedToken("AcmeCorp", normalized=True), AddedToken("acme", normalized=True)])
    apart.add_tokens([AddedToken("acmecorp", normalized=False)])
    assert tokenizer_problem("tokenizer.json", apart) is None


@pytest.mark.parametrize(("max_tokens", "fits"), [(1, False), (2, False), (3, True)])
def test_max_tokens_must_leave_room_beside_the_special_tokens(max_tokens: int, fits: bool) -> None:
    tokenizers = {"tokenizer.json": word_tokenizer(special=True)}
    reason = unservable_reason(spec_of(text(max_tokens), "mary went home"), tokenizers)
    assert (reason is None) == fits
    if not fits:
        assert reason == (
            f"input text: max_tokens {max_tokens} leaves no token for text beside the 2 special "
            "tokens its tokenizer adds"
        )
    # Without the special tokens one id is room enough.
    plain = spec_of(text(max_tokens, add_special_tokens=False), "mary went home")
    assert unservable_reason(plain, tokenizers) is None


@pytest.mark.parametrize(
    ("item", "example", "reason"),
    [
        (text(3), "? ? ? mary", "has no word within what the model reads (max_tokens 3)"),
        (text(3, truncation="left"), "mary ! ! !", "(max_tokens 3)"),
        (text(3), "[SEP]", "has no word for its tokenizer"),
        (
            TextsInput(field="text", tensor="t", max_tokens=3, vocab_size=7, separator="[SEP]"),
            ["? ? ? mary", "home"],
            "has no word within what the model reads (max_tokens 3)",
        ),
        (
            TextsInput(
                field="text", tensor="t", max_tokens=64, vocab_size=7, separator="[SEP]",
                max_joined_chars=4,
            ),
            ["? ? mary", "home"],
            "(max_tokens 64, max_joined_chars 4)",
        ),
    ],
)  # fmt: skip
def test_an_example_whose_cut_keeps_no_word(item: Any, example: Any, reason: str) -> None:
    found = unservable_reason(spec_of(item, example), {"tokenizer.json": word_tokenizer()})
    assert found is not None and found.startswith("the spec's example text ")
    assert reason in found


def test_an_example_with_a_word_the_model_reads_passes() -> None:
    tokenizers = {"tokenizer.json": word_tokenizer(special=True)}
    assert unservable_reason(spec_of(text(3), "mary ? ? ?"), tokenizers) is None


@pytest.mark.parametrize(
    ("example", "known"),
    [
        ("Where is John?", False),  # every word [UNK]
        (["Nobody came.", "Silence"], False),  # no post of a list
        ("john went away", True),  # one known word: answered as training read it
        (["Nobody came.", "mary"], True),
    ],
)
def test_an_example_whose_every_word_is_unknown_is_refused(example: Any, known: bool) -> None:
    # Found by the adversarial repo pass 11: a tokenizer fitted on no text (its special tokens
    # alone) or with max_input_chars_per_word 0 turned every word into [UNK], and the version
    # answered every request the one answer of a row of [UNK]s, as a 200.
    item = (
        text()
        if isinstance(example, str)
        else TextsInput(field="text", tensor="t", max_tokens=8, vocab_size=7, separator="[SEP]")
    )
    found = unservable_reason(spec_of(item, example), {"tokenizer.json": word_tokenizer()})
    if known:
        assert found is None
        return
    assert found == (
        "tokenizer tokenizer.json knows no word of the spec's example text: every word becomes "
        "its unknown token '[UNK]', as would every text's (was the tokenizer fitted on the "
        "training texts?)"
    )
    no_chars = Tokenizer(WordPiece(VOCAB, unk_token="[UNK]", max_input_chars_per_word=0))
    no_chars.pre_tokenizer = pre_tokenizers.Whitespace()
    assert unservable_reason(spec_of(text(), "mary went home"), {"tokenizer.json": no_chars})


def test_a_segment_separator_the_tokenizer_lacks() -> None:
    # Segments end only at the separator token: with "!" outside the vocabulary ([UNK]) every
    # text was one segment, and the evidence head answered the whole text.
    spec = ServingSpec(
        title="t",
        inputs=[text()],
        heads=[
            SegmentWeightsHead(
                output="w",
                field="evidence",
                input_field="text",
                rule=SegmentRule(separator_token="!", max_segments=2),
            )
        ],
        example={"text": "mary went home"},
    )
    tokenizers = {"tokenizer.json": word_tokenizer()}
    assert unservable_reason(spec, tokenizers) == (
        "head evidence: separator_token '!' is no token of tokenizer.json, so no text of text "
        "would be cut into segments"
    )
    rule = SegmentRule(separator_token="home", max_segments=2)
    head = spec.heads[0].model_copy(update={"rule": rule})
    assert unservable_reason(spec.model_copy(update={"heads": [head]}), tokenizers) is None
    # Found by the adversarial repo pass 11: a special token is a token of the tokenizer, yet
    # no text holds it (spelt in one it is plain text), so every text was one segment.
    for special in ("[SEP]", "[PAD]"):
        rule = SegmentRule(separator_token=special, max_segments=2)
        head = spec.heads[0].model_copy(update={"rule": rule})
        assert unservable_reason(spec.model_copy(update={"heads": [head]}), tokenizers) == (
            f"head evidence: separator_token {special!r} is a special token of tokenizer.json, "
            "which no text of text is encoded to (one spelt in a text is read as plain text), "
            "so no text would be cut into segments"
        )


@pytest.mark.parametrize("added", [None, "[MASK]"])
def test_ids_past_vocab_size_one_rule_for_export_and_gateway(added: str | None) -> None:
    # Written twice before (export's spec_check and the gateway's asset check): one rule now.
    # An added token lands past the 7 words (id 7), so vocab_size 7 has no row for it.
    tokenizer = word_tokenizer()
    if added is not None:
        tokenizer.add_special_tokens([added])
    reason = unservable_reason(spec_of(text(), "mary went home"), {"tokenizer.json": tokenizer})
    if added is None:
        assert reason is None
    else:
        assert reason == (
            "tokenizer tokenizer.json gives ids up to 7, beyond the spec's vocab_size 7 "
            "(input text)"
        )


def test_a_pad_id_texts_are_encoded_to() -> None:
    # Found by the anymodel3 pass: a WordLevelTrainer given special_tokens=["[UNK]"] puts
    # [UNK] at id 0, the default pad_id. Exported and routed; a model masking id 0 saw a text
    # of unknown words as padding alone, its masked mean was NaN, and the request a 502.
    unknown_first = Tokenizer(WordLevel({"[UNK]": 0, "mary": 1, "went": 2}, unk_token="[UNK]"))
    unknown_first.pre_tokenizer = pre_tokenizers.Whitespace()
    reason = unservable_reason(spec_of(text(), "mary went"), {"tokenizer.json": unknown_first})
    assert reason is not None
    assert reason.startswith("pad_id 0 is the id of '[UNK]', which unknown words get in")
    # a word at id 0: the text "mary" alone was all padding
    word_first = Tokenizer(WordLevel({"mary": 0, "[UNK]": 1, "went": 2}, unk_token="[UNK]"))
    word_first.pre_tokenizer = pre_tokenizers.Whitespace()
    reason = unservable_reason(spec_of(text(), "mary went"), {"tokenizer.json": word_first})
    assert reason is not None and "pad_id 0 is the id of the word 'mary'" in reason
    # a padding token of its own passes, special or not, and so does an id no token has
    assert (
        unservable_reason(spec_of(text(), "mary went"), {"tokenizer.json": word_tokenizer()})
        is None
    )
    plain = Tokenizer(WordLevel(VOCAB, unk_token="[UNK]"))
    plain.pre_tokenizer = pre_tokenizers.Whitespace()
    assert unservable_reason(spec_of(text(), "mary went"), {"tokenizer.json": plain}) is None
    gap = Tokenizer(WordLevel({"[UNK]": 1, "mary": 2, "went": 3}, unk_token="[UNK]"))
    gap.pre_tokenizer = pre_tokenizers.Whitespace()
    assert unservable_reason(spec_of(text(), "mary went"), {"tokenizer.json": gap}) is None


def test_tokenizers_of_two_padding_ids_are_told_the_spec_has_one() -> None:
    # Found serving a byte-level BPE (RoBERTa: <s> 0, <pad> 1) beside a Unigram (<pad> 0,
    # <unk> 1) input: pad_id 1 was refused for the Unigram with "give the tokenizer a padding
    # token of its own and pad_id its id", which it has; the spec has one pad_id for both.
    def built(vocab: dict[str, int], unknown: str) -> Tokenizer:
        tokenizer = Tokenizer(WordLevel(vocab, unk_token=unknown))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        tokenizer.add_special_tokens([token for token in vocab if token.startswith("<")])
        return tokenizer

    roberta = built({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "mary": 4}, "<unk>")
    unigram = built({"<pad>": 0, "<unk>": 1, "mary": 2}, "<unk>")
    spec = ServingSpec(
        title="t",
        pad_id=1,
        inputs=[
            TextInput(field="title", tensor="title_ids", tokenizer="bpe.json", max_tokens=8,
                      vocab_size=5),
            TextInput(field="body", tensor="body_ids", tokenizer="uni.json", max_tokens=8,
                      vocab_size=3),
        ],
        heads=[CategoricalHead(output="probs", field="label", labels=["a", "b"])],
        example={"title": "mary", "body": "mary"},
    )  # fmt: skip
    reason = unservable_reason(spec, {"bpe.json": roberta, "uni.json": unigram})
    assert reason is not None and reason.startswith("pad_id 1 is the id of '<unk>'")
    assert "(one pad_id pads every input: each of ['bpe.json', 'uni.json'] needs it" in reason
    alone = spec.model_copy(update={"inputs": spec.inputs[1:], "example": {"body": "mary"}})
    assert "one pad_id" not in (unservable_reason(alone, {"uni.json": unigram}) or "")


def test_a_left_padded_input_whose_id_0_is_a_texts_is_refused_with_another_pad_id() -> None:
    # The exported signature of padding 'left' takes a row's trailing ids 0 for the model
    # server's padding (training.saved_model._padding_first): with pad_id 1 and a
    # SentencePiece-style <unk> 0, a text ending in an unknown word lost its last id, which
    # the model was trained on (Keras pad_sequences kept it).
    unk_first = Tokenizer(WordLevel({"<unk>": 0, "<pad>": 1, "mary": 2}, unk_token="<unk>"))
    unk_first.pre_tokenizer = pre_tokenizers.Whitespace()
    unk_first.add_special_tokens(["<pad>"])

    def spec(padding: Literal["left", "right"], pad_id: int = 1) -> ServingSpec:
        item = TextInput(field="text", tensor="text_ids", max_tokens=8, vocab_size=3,
                         padding=padding)  # fmt: skip
        return spec_of(item, "mary").model_copy(update={"pad_id": pad_id})

    reason = unservable_reason(spec("left"), {"tokenizer.json": unk_first})
    assert reason is not None and reason.startswith(
        "input text has padding 'left' and pad_id 1: its exported signature takes a row's "
        "trailing ids 0 for the model server's padding, and 0 is the id of '<unk>', which "
        "unknown words get"
    )
    assert unservable_reason(spec("right"), {"tokenizer.json": unk_first}) is None
    # id 0 a special token (RoBERTa's <s>) is no text's: left padding with pad_id 1 passes
    roberta = Tokenizer(WordLevel({"<s>": 0, "<pad>": 1, "<unk>": 2, "mary": 3}, "<unk>"))
    roberta.pre_tokenizer = pre_tokenizers.Whitespace()
    roberta.add_special_tokens(["<s>", "<pad>"])
    item = TextInput(field="text", tensor="text_ids", max_tokens=8, vocab_size=4, padding="left")
    ok = spec_of(item, "mary").model_copy(update={"pad_id": 1})
    assert unservable_reason(ok, {"tokenizer.json": roberta}) is None
