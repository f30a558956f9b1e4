"""The Flask gateway: validates JSON, tokenises, calls TF Serving, returns readable answers."""
