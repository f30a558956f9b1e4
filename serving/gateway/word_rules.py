"""The ``no_words`` rule of request texts, as pydantic validators of the generated models.

A text must carry a word its input's tokenizer reads (:func:`serving.words.has_words`), and
the model must read one: a text input cut to ``max_tokens`` keeps a word token
(:func:`serving.words.word_kept`), and a list input cut at ``max_joined_chars`` keeps a
word in its joined text. A text of unknown words passes and becomes [UNK] ids.
"""

from __future__ import annotations

from pydantic import AfterValidator, ValidationInfo
from pydantic_core import PydanticCustomError
from tokenizers import Tokenizer

from serving.encoding import input_text, word_encoding
from serving.spec import TextInput, TextsInput
from serving.windows import Encodings, Window
from serving.words import has_words, word_kept, word_kept_in

NO_WORDS_ERROR = "no_words"
# Validation context key: an Encodings that the no_words check of a text input fills with
# the text's whole encoding, so the request's encoding does not tokenise it again.
ENCODINGS = "encodings"


def _no_words(message: str = "the text has no word (no letter or digit the tokenizer reads)",
              **context: int) -> PydanticCustomError:  # fmt: skip
    return PydanticCustomError(NO_WORDS_ERROR, message, context or None)


def words(tokenizer: Tokenizer, item: TextInput | None = None) -> AfterValidator:
    """A validator failing with ``no_words`` for a text the tokenizer makes no token from.

    With ``item`` (a text that is one model input) the text is tokenised as far as the
    input's cut needs (:func:`serving.encoding.word_encoding`), its encoding is kept in an
    :class:`~serving.encoding.Encodings` given in the validation context under
    ``ENCODINGS``, and a word must survive the input's cut.
    """

    def check(text: str, info: ValidationInfo) -> str:
        if item is None:
            if not has_words(tokenizer, text):
                raise _no_words()
            return text
        context = info.context
        known = context.get(ENCODINGS) if isinstance(context, dict) else None
        encoding: Window | None = None
        if isinstance(known, Encodings):
            encoding = known.get(tokenizer, text, item)  # the same text elsewhere in this request
        if encoding is None:
            encoding = word_encoding(tokenizer, text, item)
            if encoding is None:
                raise _no_words()
            if isinstance(known, Encodings):
                known.keep(tokenizer, text, item, encoding)
        if not word_kept(tokenizer, text, encoding, item):
            raise _no_words(
                "the text has no word within the {limit} tokens the model reads (max_tokens)",
                limit=item.max_tokens,
            )
        return text

    return AfterValidator(check)


def joined_words(item: TextsInput, tokenizer: Tokenizer) -> AfterValidator:
    """``no_words`` for a list whose joined text, as the model reads it, has no word left:
    each item has one, but the cut at ``max_joined_chars`` (:func:`serving.encoding.input_text`)
    or at ``max_tokens`` (:func:`serving.words.word_kept_in`) may leave only the blanks or
    symbols of the first ones (the last ones, with ``truncation: left``)."""
    limit = item.max_joined_chars or 0
    separator = len(item.separator) + 2  # join_posts puts " [SEP] " between items

    def check(texts: list[str]) -> list[str]:
        joined = input_text(item, texts)
        cut = limit and sum(map(len, texts)) + separator * (len(texts) - 1) > limit
        if cut and not has_words(tokenizer, joined):
            raise _no_words(
                "the texts have no word within the first {limit} characters the model reads "
                "(max_joined_chars)",
                limit=limit,
            )
        if not word_kept_in(tokenizer, joined, item):
            raise _no_words(
                "the texts have no word within the {limit} tokens the model reads (max_tokens)",
                limit=item.max_tokens,
            )
        return texts

    return AfterValidator(check)
