"""A TF Serving-compatible model server for machines without Docker (see README.md)."""
