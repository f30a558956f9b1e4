"""RFC 9112 section 3.2's ``Host`` rule on gunicorn's request parser (the workers').

gunicorn refuses a ``Host`` given twice but answered an HTTP/1.1 request without one, or
with one that is no ``host[:port]`` (``Host: a b``), where the RFC has a server answer 400: a
proxy in front and the gateway could each read another host from the one request. The
workers make gunicorn's parser build :class:`HostCheckedRequest` messages; the refusal is
gunicorn's ``InvalidHeader``, answered 400 in JSON as its other refusals
(:mod:`serving.gateway.workers`). The same messages read ``Connection`` as a list of options
(:meth:`HostCheckedRequest.should_close`).
"""

from __future__ import annotations

from gunicorn.http import message, parser
from gunicorn.http.errors import InvalidHeader

from serving.plain_http import HOST, connection_options


class HostCheckedRequest(message.Request):  # type: ignore[misc]
    """gunicorn's request, refusing (``InvalidHeader("HOST")``) an HTTP/1.1 request without
    ``Host``, and a ``Host`` given twice or of another form than ``host[:port]``."""

    def set_body_reader(self) -> None:
        """Check ``Host`` once the headers are read, then gunicorn's framing of the body."""
        hosts = [value for name, value in self.headers if name == "HOST"]
        if len(hosts) > 1 or (not hosts and self.version >= (1, 1)):
            raise InvalidHeader("HOST", req=self)
        if hosts and not HOST.fullmatch(hosts[0]):
            raise InvalidHeader("HOST", req=self)
        super().set_body_reader()

    def should_close(self) -> bool:
        """Whether the connection closes after this request's answer: a ``close`` option
        anywhere in any ``Connection`` field closes it, a ``keep-alive`` option keeps an
        HTTP/1.0 one (RFC 9110 section 7.6.1: a list of case-insensitive options). gunicorn
        read only the first field, and only a whole value ``close`` or ``keep-alive``:
        ``keep-alive, close`` kept the connection a client asked to close, as cheroot did
        (``serving.modelserver.rest_http``)."""
        options = connection_options(value for name, value in self.headers if name == "CONNECTION")
        if "close" in options:
            return True
        closes = bool(super().should_close())
        if closes and "keep-alive" in options and self.version <= (1, 0):
            return bool(self.must_close) or getattr(self, "method", None) == "CONNECT"
        return closes


def use_host_checked_requests() -> None:
    """Make this process's gunicorn parse requests as :class:`HostCheckedRequest` (its
    ``RequestParser`` builds messages of its ``mesg_class``). Called in each gateway worker
    after the fork."""
    parser.RequestParser.mesg_class = HostCheckedRequest
