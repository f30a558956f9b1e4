"""Serving side: the Flask gateway, its TF Serving clients and the local model server.

Importing this package must stay cheap: the gateway never imports TensorFlow.
"""
