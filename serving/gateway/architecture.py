"""``GET /v1/models/<name>/architecture.png`` and ``.txt``: the routed version's architecture.

Training writes ``model.png`` (``keras.utils.plot_model(show_shapes=True)``) and
``summary.txt`` (``model.summary(expand_nested=True)``) into each version's ``assets.extra/``;
these routes serve the files of the version requests currently go to (``?version=N`` pins
one). A version exported without Graphviz has no picture: 404 saying so.
"""

from __future__ import annotations

from flask import Response, send_file

from serving import contract
from serving.gateway.errors import GatewayError, retry_later
from serving.gateway.web import (
    PIN_KEYS,
    blueprint,
    exchange,
    ignore_unusable_range,
    query_selector,
    services,
    takes_query,
)

# extension -> (file in assets.extra/, content type)
ARCHITECTURE_FILES = {
    "png": ("model.png", "image/png"),
    "txt": ("summary.txt", "text/plain"),  # Flask adds "; charset=utf-8"
}


@blueprint.get("/v1/models/<name>/architecture.<extension>")
@takes_query(*PIN_KEYS)
def architecture(name: str, extension: str) -> Response:
    """The routed (or ``?version=N`` / ``?label=L``) version's architecture picture or summary."""
    if extension not in ARCHITECTURE_FILES:
        raise GatewayError(404, "architecture is served as .png or .txt")
    found = services()
    state = exchange()
    if name in found.registry.models:  # metrics labels: never an unknown URL segment
        state.model = name
    runtime = found.registry.resolve(name, query_selector())
    state.model, state.version = name, str(runtime.version)
    file_name, content_type = ARCHITECTURE_FILES[extension]
    versions = contract.model_dir(found.settings.model_repo, name)
    missing = GatewayError(
        404,
        f"model '{name}' version {runtime.version} has no {file_name} "
        "(exported before architecture files, or without Graphviz for the picture)",
    )
    ignore_unusable_range()
    try:
        folder = contract.version_dirs(versions, transient_errors=True).get(runtime.version)
        path = None if folder is None else folder / contract.ASSETS_DIR / file_name
        if path is None or not path.is_file():
            raise missing
        response = send_file(path, mimetype=content_type, max_age=0)
    except OSError as error:
        # Found by the adversarial repo pass 6: a file removed after the is_file() check
        # (or unreadable) was a 500; no descriptor left read as no such version (404).
        if error.errno not in contract.TRANSIENT_ERRNOS:
            raise missing from error
        raise retry_later(
            "the architecture files cannot be read now; retry later",
            found.settings.retry_after_seconds,
        ) from error
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
