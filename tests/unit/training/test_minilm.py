"""The Keras MiniLM port: weight mapping checked against a numpy BERT, masking, real weights."""

from __future__ import annotations

from math import erf, sqrt

import numpy as np
import pytest

from serving.tokenization import encode_texts, load_tokenizer
from training import minilm

TINY = minilm.MiniLMConfig(
    vocab_size=40,
    hidden_size=8,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=16,
    max_position_embeddings=16,
    dropout=0.0,
)


def _random_hf_weights(config, seed=0):
    """Random weights named and shaped as in a Hugging Face BertModel safetensors file."""
    rng = np.random.default_rng(seed)
    hidden, inner = config.hidden_size, config.intermediate_size

    def array(*shape):
        return rng.normal(0, 0.5, shape).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": array(config.vocab_size, hidden),
        "embeddings.position_embeddings.weight": array(config.max_position_embeddings, hidden),
        "embeddings.token_type_embeddings.weight": array(config.type_vocab_size, hidden),
        "embeddings.LayerNorm.weight": 1 + array(hidden),
        "embeddings.LayerNorm.bias": array(hidden),
    }
    for index in range(config.num_hidden_layers):
        prefix = f"encoder.layer.{index}"
        shapes = {
            "attention.self.query": (hidden, hidden),
            "attention.self.key": (hidden, hidden),
            "attention.self.value": (hidden, hidden),
            "attention.output.dense": (hidden, hidden),
            "intermediate.dense": (inner, hidden),  # torch Linear: [out, in]
            "output.dense": (hidden, inner),
        }
        for name, shape in shapes.items():
            weights[f"{prefix}.{name}.weight"] = array(*shape)
            weights[f"{prefix}.{name}.bias"] = array(shape[0])
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{prefix}.{norm}.weight"] = 1 + array(hidden)
            weights[f"{prefix}.{norm}.bias"] = array(hidden)
    return weights


def _layer_norm(x, weights, prefix, eps):
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * weights[f"{prefix}.weight"] + weights[
        f"{prefix}.bias"
    ]


def _linear(x, weights, prefix):
    return x @ weights[f"{prefix}.weight"].T + weights[f"{prefix}.bias"]


def _reference_bert(ids, weights, config):
    """A plain numpy BertModel forward pass with mean pooling over non-padding tokens."""
    eps, heads = config.layer_norm_eps, config.num_attention_heads
    length = ids.shape[1]
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][:length]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, weights, "embeddings.LayerNorm", eps)
    mask = ids != 0
    head_size = config.hidden_size // heads
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / sqrt(2))))
    for index in range(config.num_hidden_layers):
        prefix = f"encoder.layer.{index}"

        def split(t):
            return t.reshape(t.shape[0], length, heads, head_size).transpose(0, 2, 1, 3)

        q, k, v = (
            split(_linear(x, weights, f"{prefix}.attention.self.{name}"))
            for name in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_size)
        scores = np.where(mask[:, None, None, :], scores, -1e9)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        attention = _linear(context, weights, f"{prefix}.attention.output.dense")
        x = _layer_norm(x + attention, weights, f"{prefix}.attention.output.LayerNorm", eps)
        inner = gelu(_linear(x, weights, f"{prefix}.intermediate.dense"))
        x = _layer_norm(x + _linear(inner, weights, f"{prefix}.output.dense"), weights,
                        f"{prefix}.output.LayerNorm", eps)  # fmt: skip
    weights_mask = mask[..., None].astype(np.float32)
    return (x * weights_mask).sum(1) / weights_mask.sum(1)


def test_loaded_weights_reproduce_a_reference_bert():
    weights = _random_hf_weights(TINY)
    encoder = minilm.build_encoder(TINY)
    minilm.load_weights(encoder, weights, TINY)
    ids = np.array([[1, 5, 7, 9, 2, 0, 0], [1, 3, 2, 0, 0, 0, 0]], np.int32)
    expected = _reference_bert(ids, weights, TINY)
    actual = np.asarray(encoder.predict_on_batch(ids))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_extra_padding_does_not_change_the_vector():
    encoder = minilm.build_encoder(TINY)
    minilm.load_weights(encoder, _random_hf_weights(TINY, seed=1), TINY)
    short = np.array([[1, 5, 7, 2]], np.int32)
    padded = np.array([[1, 5, 7, 2, 0, 0, 0, 0, 0]], np.int32)
    np.testing.assert_allclose(
        encoder.predict_on_batch(short), encoder.predict_on_batch(padded), atol=1e-5
    )


def test_freeze_lower_layers_leaves_only_the_top_blocks_trainable():
    encoder = minilm.build_encoder(TINY)
    minilm.freeze_lower_layers(encoder, 1)
    trainable = {layer.name for layer in encoder.layers if layer.trainable and layer.weights}
    parts = ("attention", "attention_norm", "intermediate", "output", "output_norm")
    assert trainable == {f"layer_1_{part}" for part in parts}


def test_config_reads_the_package_config():
    config = minilm.MiniLMConfig.from_json(minilm.package_dir() / minilm.CONFIG_FILE)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        384,
        6,
        12,
    )
    assert config.layer_norm_eps == pytest.approx(1e-12)


@pytest.mark.slow
def test_real_weights_score_paraphrases_above_unrelated_sentences():
    encoder = minilm.load_pretrained_encoder()
    tokenizer = load_tokenizer(minilm.package_dir() / minilm.TOKENIZER_FILE)
    texts = [
        "A man is playing a guitar.",
        "Someone is playing the guitar.",
        "The stock market fell sharply today.",
    ]
    vectors = np.asarray(encoder.predict_on_batch(encode_texts(tokenizer, texts, 64)))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert vectors[0] @ vectors[1] > 0.6
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
