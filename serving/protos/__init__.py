"""The project's own TF Serving wire messages (compiled by ``python -m serving.protos.build``)."""
