"""HTTP requests to an address vetted beforehand (`image_urls.public_address`).

The connection goes to that address, not to whatever the URL's host name resolves to a moment
later: a name that turns private between the check and the request (DNS rebinding) reaches
nothing inside. The request still names the host (the Host header), and TLS still checks the
certificate against it.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        # Never through a proxy: the request must reach the vetted address itself.
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        name = host_params["host"]
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": name, "assert_hostname": name}
        return self.poolmanager.connection_from_host(
            **{**host_params, "host": self._address}, pool_kwargs=pool_kwargs
        )


def request(method: str, url: str, *, address: str | None, **kwargs: Any) -> requests.Response:
    """`requests.request`, connecting to `address` when given (else by the URL's host name,
    for addresses that need no vetting: the simulator, private URLs allowed in development)."""
    if address is None:
        return requests.request(method, url, **kwargs)
    parts = urlsplit(url)
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: straight to the address
    # The CA bundle the environment names still applies, as it would to any other request.
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.mount(f"{parts.scheme}://", _PinnedAdapter(address))
    headers = {**kwargs.pop("headers", {}), "Host": parts.netloc}  # the name, not the address
    # Not closed here: a streamed response still reads through the session's connection.
    return session.request(method, url, headers=headers, **kwargs)
