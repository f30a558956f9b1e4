"""Entry point: ``python -m serving.modelserver`` and the ``multihead-modelserver`` command."""

from serving.gpu_logs import import_tensorflow


def run() -> int:
    """Start TensorFlow (quiet about a missing GPU where none exists), then the server."""
    import_tensorflow()
    from serving.modelserver.main import main

    return main()


if __name__ == "__main__":
    raise SystemExit(run())
