"""Training side: dataset readers, tokenizers, Keras models and the SavedModel exporter."""
