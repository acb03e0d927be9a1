"""HTTP requests from the workers to addresses outside: webhook deliveries and result files.

Two guards that `requests` alone does not give:
- The connection goes to an address vetted beforehand (`image_urls.public_addresses`), not to
  whatever the URL's host name resolves to a moment later: a name that turns private between
  the check and the request (DNS rebinding) reaches nothing inside. The request still names the
  host (the Host header), and TLS still checks the certificate against it.
- The answer's status line and headers must have come within `headers_within` seconds. A socket
  timeout bounds each read only, so a server sending its headers a byte at a time could
  otherwise hold a worker until the task's own timeout. (Callers bound the body themselves.)
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class _Cutter:
    """Shuts the request's sockets down when its time is up, unless the answer came first."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._settled = False
        self.cut = False

    def add(self, sock: socket.socket) -> None:
        # A duplicate: TLS wraps the original and detaches it, but shutting the duplicate down
        # still ends the one connection both name.
        with self._lock:
            if not self._settled:
                self.sockets.append(sock.dup())

    def time_up(self) -> None:
        with self._lock:
            if self._settled:
                return
            self.cut = True
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # closed already

    def settle(self) -> bool:
        """No cut after this; returns whether one came first."""
        with self._lock:
            self._settled = True
            for sock in self.sockets:
                sock.close()  # the duplicate only: the connection stays open for the body
            self.sockets = []
            return self.cut


def _watched(pool_class: type[HTTPConnectionPool], cutter: _Cutter) -> type[HTTPConnectionPool]:
    """`pool_class`, its connections' sockets handed to `cutter` as they are opened."""
    connection_class: Any = pool_class.ConnectionCls

    class Connection(connection_class):
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()
            cutter.add(sock)
            return sock

    return type(pool_class.__name__, (pool_class,), {"ConnectionCls": Connection})


class _Adapter(HTTPAdapter):
    def __init__(self, address: str | None, cutter: _Cutter) -> None:
        self._address = address
        self._cutter = cutter
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _watched(HTTPConnectionPool, self._cutter),
            "https": _watched(HTTPSConnectionPool, self._cutter),
        }

    def add_headers(self, request: Any, **kwargs: Any) -> None:
        if self._address is not None:
            # The name, not the address; from the prepared URL, whose host is ASCII (IDNA).
            request.headers["Host"] = urlsplit(request.url).netloc

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        if self._address is None:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        # Never through a proxy: the request must reach the vetted address itself.
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        name = host_params["host"]
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": name, "assert_hostname": name}
        return self.poolmanager.connection_from_host(
            **{**host_params, "host": self._address}, pool_kwargs=pool_kwargs
        )


def request(
    method: str, url: str, *, addresses: list[str] | None, headers_within: float, **kwargs: Any
) -> requests.Response:
    """`requests.request`, connecting to the first of `addresses` that takes the connection
    (else by the URL's host name, for addresses that need no vetting: the simulator, private
    URLs allowed in development), and giving up (`requests.ConnectionError`) when the
    answer's headers have not all come within `headers_within` seconds."""
    if not addresses:
        return _request(method, url, address=None, headers_within=headers_within, **kwargs)
    for address in addresses[:-1]:
        try:
            return _request(method, url, address=address, headers_within=headers_within, **kwargs)
        except requests.RequestException as exc:
            if not _not_connected(exc):
                raise  # it may have reached the other side: not sent a second time
    return _request(method, url, address=addresses[-1], headers_within=headers_within, **kwargs)


def _not_connected(exc: requests.RequestException) -> bool:
    """Whether the request failed before a connection was made: nothing was sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _request(
    method: str, url: str, *, address: str | None, headers_within: float, **kwargs: Any
) -> requests.Response:
    cutter = _Cutter()
    session = requests.Session()
    adapter = _Adapter(address, cutter)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if address is not None:
        session.trust_env = False  # no proxy from the environment: straight to the address
        # The CA bundle the environment names still applies, as to any other request.
        session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
    timer = threading.Timer(headers_within, cutter.time_up)
    timer.daemon = True
    timer.start()
    try:
        # Not closed here: a streamed response still reads through the session's connection.
        response = session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        if cutter.settle():
            raise requests.ConnectionError(
                f"no answer within {headers_within:g} s (cut off)"
            ) from exc
        raise
    finally:
        timer.cancel()
    if cutter.settle():  # cut as the headers came: the body is gone with the connection
        response.close()
        raise requests.ConnectionError(f"no answer within {headers_within:g} s (cut off)")
    return response
