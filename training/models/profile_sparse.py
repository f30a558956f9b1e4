"""The ``profile`` TF-IDF features as a ``tf.SparseTensor``: what an inference call reads.

A person's TF-IDF row has one entry per distinct term (a few thousand of the default preset's
181k columns), so a layer reading it costs an embedding bag (a weighted gather of the kernel
rows of the terms present) instead of a product with the whole kernel: Keras's TF backend
multiplies a rank-2 ``SparseTensor`` by a dense kernel with ``tf.nn.embedding_lookup_sparse``
(``keras.ops.matmul``), so ``keras.layers.Dense`` reads it as it is. Training keeps the dense
rows (``TfIdfBag`` with ``training=True``): the same values, the same gradients as before.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


def sparse_tfidf(ids: Any, idf: Any, size: int) -> tf.SparseTensor:
    """L2-normalised sublinear TF-IDF rows of ``ids`` as a ``tf.SparseTensor``.

    ``ids``: int ``[batch, length]`` in ``[0, size)`` (0 is padding, a term like the others:
    its IDF is 0 once set, so it adds an explicit zero); ``idf``: float32 ``[size]``. Returns
    float32 ``[batch, size]`` with one entry per distinct (row, id), in row-major (canonical)
    order, value ``log1p(count) * idf[id] / row norm``: the dense
    ``keras.ops.normalize(log1p(bincount) * idf)`` of ``TfIdfBag``, including its norm floor
    (``x * min(rsqrt(sum x^2), 1 / epsilon)``), so a row of padding only is 0, not NaN.
    Raises ``tf.errors.InvalidArgumentError`` for an id outside ``[0, size)``.
    """
    ids = tf.cast(ids, tf.int64)
    shape = tf.shape(ids, out_type=tf.int64)
    rows = tf.broadcast_to(tf.range(shape[0])[:, None], shape)
    # One unique over the whole batch: row * size + id keys the (row, id) pairs.
    keys, _, counts = tf.unique_with_counts(tf.reshape(rows * size + ids, [-1]), tf.int64)
    order = tf.argsort(keys)  # unique keeps first-seen order; sparse ops want row-major
    keys = tf.gather(keys, order)
    rows, columns = keys // size, keys % size
    counts = tf.cast(tf.gather(counts, order), tf.float32)
    values = tf.math.log1p(counts) * tf.gather(idf, columns)
    square_sum = tf.math.unsorted_segment_sum(tf.square(values), rows, shape[0])
    inverse_norm = tf.minimum(tf.math.rsqrt(square_sum), 1.0 / keras.backend.epsilon())
    return tf.SparseTensor(
        tf.stack([rows, columns], axis=1),
        values * tf.gather(inverse_norm, rows),
        tf.stack([shape[0], tf.constant(size, tf.int64)]),
    )


def scale_columns(features: tf.SparseTensor, scale: Any) -> tf.SparseTensor:
    """``features * scale`` for a ``[batch, size]`` ``SparseTensor`` and a ``[size]`` scale:
    each entry times its column's factor (what ``Tensor * scale`` broadcasts for dense rows;
    Keras's sparse multiply does not broadcast a vector)."""
    return tf.SparseTensor(
        features.indices,
        features.values * tf.gather(scale, features.indices[:, 1]),
        features.dense_shape,
    )
