"""What the workers send out (`videos.outbound`).

DNS rebinding: a host name that resolves to a public address when it is checked and to an
internal one when the request connects. What the workers fetch (webhook deliveries, result
files) connects to the address that was checked (`videos.outbound`), so nothing inside is
reached. Here 127.0.0.2 plays the public address and 127.0.0.1 the internal one, both serving
on the same port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.fixtures.data import make_job
from videos import image_urls, outbound
from videos.jobs import download
from videos.jobs.states import Party, transition
from videos.models import JobState, WebhookAttempt, WebhookEvent
from videos.webhooks.endpoints import webhook_create

HOST = "rebind.example"
PUBLIC, INSIDE = "127.0.0.2", "127.0.0.1"


@dataclass
class Server:
    answer: bytes
    hosts: list[str] = field(default_factory=list)  # the Host header of each request


def serve(address: str, port: int, server: Server) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            server.hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", str(len(server.answer)))
            self.end_headers()
            self.wfile.write(server.answer)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def rebinding(monkeypatch, settings) -> Iterator[tuple[int, Server, Server]]:
    """The public and the inside server on one port, and a name that the check resolves to the
    first and a connection to the second."""
    public, inside = Server(b"public answer"), Server(b"inside secret")
    httpds = [serve(PUBLIC, 0, public)]
    port = httpds[0].server_port
    httpds.append(serve(INSIDE, port, inside))

    monkeypatch.setattr(image_urls, "resolve_host", lambda host, port: [PUBLIC])
    monkeypatch.setattr(image_urls, "_is_public", lambda address: address == PUBLIC)
    real_getaddrinfo = socket.getaddrinfo

    def rebound(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo(INSIDE if host == HOST else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    settings.PIPELINE = {**settings.PIPELINE, "RESULT_ALLOW_PRIVATE_URLS": False}
    try:
        yield port, public, inside
    finally:
        for httpd in httpds:
            httpd.shutdown()
            httpd.server_close()


def test_a_request_goes_to_the_checked_address_naming_the_host(rebinding):
    port, public, inside = rebinding
    url = f"http://{HOST}:{port}/file"
    assert requests.get(url, timeout=5).content == b"inside secret"  # what rebinding does

    addresses = image_urls.public_addresses(url, name="The URL")
    assert addresses == [PUBLIC]
    answer = outbound.request("GET", url, addresses=addresses, headers_within=5, timeout=5)
    assert answer.content == b"public answer"
    assert public.hosts == inside.hosts == [f"{HOST}:{port}"]  # one each: the check held


def test_an_international_host_name_is_sent_in_its_ascii_form(rebinding):
    port, public, _ = rebinding
    url = f"http://bücher.example:{port}/file"
    assert outbound.request("GET", url, addresses=[PUBLIC], headers_within=5, timeout=5).ok
    assert public.hosts == [f"xn--bcher-kva.example:{port}"]


def test_an_address_that_takes_no_connection_gives_way_to_the_next(rebinding):
    port, public, _ = rebinding
    url = f"http://{HOST}:{port}/file"
    nobody = "127.0.0.3"  # nothing listens there: refused before anything is sent
    answer = outbound.request("GET", url, addresses=[nobody, PUBLIC], headers_within=5, timeout=5)
    assert answer.content == b"public answer" and len(public.hosts) == 1


@pytest.mark.django_db(transaction=True)
def test_a_webhook_delivery_reaches_the_checked_address_only(rebinding, project):
    port, public, inside = rebinding
    webhook_create(
        project=project,
        url=f"http://{HOST}:{port}/hooks",
        events=[WebhookEvent.JOB_FAILED],
        by=None,
    )
    job = make_job(project, state=JobState.GENERATING)
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")

    assert inside.hosts == []
    assert public.hosts == [f"{HOST}:{port}"]
    assert WebhookAttempt.objects.get().response_body == "public answer"


def test_a_result_download_reaches_the_checked_address_only(rebinding, tmp_path):
    port, public, inside = rebinding
    target = tmp_path / "clip.mp4"
    download.download(f"http://{HOST}:{port}/clip.mp4", target)
    assert target.read_bytes() == b"public answer"
    assert (len(public.hosts), inside.hosts) == (1, [])


@pytest.fixture
def tls_context(monkeypatch) -> Iterator[Any]:
    """A server-side TLS context with a certificate for HOST, from a CA that the environment's
    bundle names (as an operator's REQUESTS_CA_BUNDLE would)."""
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    with ca.cert_pem.tempfile() as bundle:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
        yield context


@pytest.fixture
def tls_server(tls_context) -> Iterator[int]:
    """An HTTPS server on the public address, for HOST."""
    httpd = serve(PUBLIC, 0, Server(b"public answer"))
    httpd.socket = tls_context.wrap_socket(httpd.socket, server_side=True)
    yield httpd.server_port
    httpd.shutdown()
    httpd.server_close()


def test_tls_to_the_checked_address_verifies_the_certificate_against_the_host_name(tls_server):
    port = tls_server
    answer = outbound.request(
        "GET", f"https://{HOST}:{port}/", addresses=[PUBLIC], headers_within=5, timeout=5
    )
    assert answer.content == b"public answer"

    # The same server under a name its certificate does not carry is refused.
    with pytest.raises(requests.exceptions.SSLError):
        outbound.request(
            "GET", f"https://other.example:{port}/", addresses=[PUBLIC], headers_within=5, timeout=5
        )


# --- headers sent a byte at a time ----------------------------------------------------------


@pytest.fixture
def slow_headers() -> Iterator[Any]:
    """Start a server on 127.0.0.1 that sends its status line and headers a byte every 0.2 s
    (about 8 s in all), each byte well within any socket timeout; over TLS with a context.
    Returns its port."""
    stop = threading.Event()
    listeners: list[socket.socket] = []

    def answer(connection: socket.socket, tls: Any) -> None:
        try:
            if tls is not None:
                connection = tls.wrap_socket(connection, server_side=True)
            with connection:
                connection.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: " + b"x" * 20
                for byte in head + b"\r\n\r\nok":
                    if stop.is_set():
                        return
                    connection.sendall(bytes([byte]))
                    time.sleep(0.2)
        except OSError:
            return  # the client hung up

    def start(tls: Any = None) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve_forever() -> None:
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=answer, args=(connection, tls), daemon=True).start()

        threading.Thread(target=serve_forever, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    stop.set()
    for listener in listeners:
        listener.close()


def test_headers_that_do_not_all_come_in_time_are_cut_off(slow_headers):
    url = f"http://127.0.0.1:{slow_headers()}/"
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError, match="no answer within 1 s"):
        outbound.request("GET", url, addresses=None, headers_within=1, timeout=5)
    assert time.monotonic() - started < 4  # not the 8 s the server would take


def test_headers_over_tls_are_cut_off_too(slow_headers, tls_context):
    url = f"https://{HOST}:{slow_headers(tls_context)}/"
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError, match="no answer within 1 s"):
        outbound.request("GET", url, addresses=["127.0.0.1"], headers_within=1, timeout=5)
    assert time.monotonic() - started < 4


@pytest.mark.django_db(transaction=True)
def test_a_webhook_receiver_trickling_its_headers_is_cut_off_and_the_try_recorded(
    slow_headers, project, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    url = f"http://127.0.0.1:{slow_headers()}/"
    webhook_create(project=project, url=url, events=[WebhookEvent.JOB_FAILED], by=None)
    job = make_job(project, state=JobState.GENERATING)
    started = time.monotonic()
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    assert time.monotonic() - started < 4
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status, attempt.error) == (None, "ConnectionError")
