"""A request gunicorn refuses is counted and logged once its JSON answer is sent, as 499 when
the client had reset the connection (it was counted with the refusal's status, then the
answer failed): a real TCP connection, gunicorn's own parser, the gateway's app."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import struct
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.parser import RequestParser

from serving.gateway.app import create_app
from serving.gateway.logs import LOGGER_NAME, JsonFormatter
from serving.gateway.settings import GatewaySettings
from serving.gateway.workers import ThreadWorker
from tests.support.served_gateway import close_app

CLIENT = ("127.0.0.1", 50000)
REFUSED = b"GET /healthz HTTP/1.1\r\nHost: gw\r\nBad Header Line\r\n\r\n"  # gunicorn's 400


@pytest.mark.parametrize("reset", [False, True], ids=["client-reads", "client-reset"])
def test_a_refusal_counts_as_delivered(tiny_repo: Path, reset: bool) -> None:
    app = create_app(GatewaySettings(model_repo=tiny_repo, log_level="INFO"))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server_side, _ = listener.accept()
    try:
        client.sendall(REFUSED)
        config = Config()
        with pytest.raises(Exception) as raised:
            next(iter(RequestParser(config, server_side, CLIENT)))
        if reset:  # SO_LINGER 0: the close resets the connection; the answer's write fails
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        worker = ThreadWorker.__new__(ThreadWorker)  # handle_error reads cfg, log and wsgi
        worker.cfg, worker.log, worker.wsgi = config, Logger(config), app
        worker.handle_error(None, server_side, CLIENT, raised.value)
        metrics = app.test_client().get("/metrics").get_data(as_text=True)
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)
        for sock in (client, server_side, listener):
            sock.close()
        close_app(app)
    status = 499 if reset else 400
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == f"{LOGGER_NAME}.access"]
    assert [line["status"] for line in access if line["path"] != "/metrics"] == [status]
    counted = re.findall(
        r'^gateway_requests_total\{endpoint="unmatched",.*status="(\d+)".*\} 1\.0$', metrics, re.M
    )
    assert counted == [str(status)], metrics
