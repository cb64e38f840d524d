"""An HTTP client for one registry: scheme choice, auth challenges, retries, clear errors.

Built on ``requests``: a pooled, thread-safe ``Session`` with streaming bodies, redirects
that drop ``Authorization`` when they leave the host, and TLS always verified, against the
system's CA store (:func:`system_ca_bundle`) and the registry's docker-style ``certs.d``
directory (:mod:`builder.registry.certs`: extra CAs, a client certificate). Every request
names the repository scopes it needs (``repository:app:pull,push``); on a 401 the client
reads the ``WWW-Authenticate`` challenge and answers it as distribution's ``auth`` package
does:

* ``Basic``: the saved user name and password;
* ``Bearer``: a token from the challenge's ``realm`` for the ``service`` and scopes, asked
  for with basic credentials (or a refresh token) when there are any, anonymously otherwise.

Tokens are cached per scope set. Connection errors and 5xx answers are retried with
exponential backoff; a request body is therefore given as bytes or as a function that
opens a fresh stream. Credentials and tokens never appear in messages.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from builder.errors import RegistryError
from builder.registry.certs import (
    ContextAdapter,
    context_bundle,
    host_certs,
    tls_context,
    tls_failure_message,
)
from builder.registry.challenge import Challenge, parse_challenges
from builder.registry.credentials import Credentials, find_credentials

DOCKER_HUB_API_HOST = "registry-1.docker.io"
_ALWAYS_PLAIN_HTTP = ("localhost", "127.0.0.1", "::1", "[::1]")
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_TIMEOUT = (15.0, 120.0)
_USER_AGENT = "kiln/0.1"


class Readable(Protocol):
    """An upload body read in pieces (a file, or a counting wrapper around one)."""

    def read(self, size: int = -1, /) -> bytes: ...


Body = bytes | Callable[[], Readable] | None


class TransientRegistryError(RegistryError):
    """The registry was unreachable or answered 5xx: a later attempt may succeed."""


_SYSTEM_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # Alpine, macOS
)


def system_ca_bundle() -> str | bool:
    """The CA bundle TLS is verified with: ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` when
    set, else the system's store (so a CA the administrator added is trusted, as docker
    does), else ``True`` (certifi's bundle, which requests ships with)."""
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(variable):
            return os.environ[variable]
    return next((path for path in _SYSTEM_CA_BUNDLES if os.path.isfile(path)), True)


def api_host(registry: str) -> str:
    """The host that serves the API: Docker Hub's name differs from its references."""
    return DOCKER_HUB_API_HOST if registry == "docker.io" else registry


def uses_plain_http(registry: str, insecure: Sequence[str], *, has_certs: bool = False) -> bool:
    """Plain http only for loopback names and registries the user named insecure; a
    loopback registry with a ``certs.d`` directory (``has_certs``) is spoken to over TLS."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    return (host in _ALWAYS_PLAIN_HTTP and not has_certs) or registry in insecure or host in insecure


def configured_insecure_registries() -> tuple[str, ...]:
    """Registries named insecure in kiln's registries file: ``$KILN_REGISTRIES_CONFIG``, else
    ``$XDG_CONFIG_HOME/kiln/registries.json``, with docker's ``daemon.json`` key
    (``{"insecure-registries": ["registry.lan:5000"]}``)."""
    path = os.environ.get("KILN_REGISTRIES_CONFIG") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "kiln", "registries.json"
    )
    try:
        with open(path, "rb") as config_file:
            document = json.load(config_file)
    except FileNotFoundError:
        return ()
    except (OSError, ValueError) as err:
        raise RegistryError(f"cannot read the registries file {path}: {err}") from err
    names = document.get("insecure-registries", []) if isinstance(document, dict) else None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise RegistryError(f"{path}: insecure-registries must be a list of host[:port] names")
    return tuple(names)


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


class RegistryClient:
    """Requests to one registry, shared by threads (the session and token cache are safe)."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: Sequence[str] = (),
        credentials: Credentials | None = None,
        look_up_credentials: bool = True,
        retries: int = 4,
        backoff_seconds: float = 0.25,
    ) -> None:
        self.registry = registry
        insecure = (*insecure, *configured_insecure_registries())
        certs = host_certs(registry)
        plain = uses_plain_http(registry, insecure, has_certs=certs is not None)
        scheme = "http" if plain else "https"
        self.base_url = f"{scheme}://{api_host(registry)}"
        self.credentials = credentials
        if credentials is None and look_up_credentials:
            self.credentials = find_credentials(registry)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.session = requests.Session()
        self.session.headers["User-Agent"] = _USER_AGENT
        self.session.verify = system_ca_bundle()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if certs is not None and not plain:
            context = tls_context(certs, self.session.verify)
            # This registry's host only, as docker scopes certs.d: its token server and the
            # places it redirects blob downloads to keep the system's trust.
            tls = ContextAdapter(context, pool_connections=4, pool_maxsize=16)
            self.session.mount(f"https://{api_host(registry)}/", tls)
            # A path, not True: with True requests swaps in its own context for ours.
            self.session.verify = context_bundle(self.session.verify)
        self._authorization: dict[frozenset[str], str] = {}
        self._lock = threading.Lock()

    def ping(self) -> None:
        """``GET /v2/``, answering its challenge: proves the registry speaks the API and, with
        credentials, that it accepts them (``kiln login``)."""
        response = self.request("GET", "/v2/", scopes=[], what=f"the API root of {self.registry}")
        with response:
            if "Docker-Distribution-API-Version" not in response.headers and response.text.strip() != "{}":
                raise RegistryError(f"{self.base_url} does not answer like an OCI distribution registry")

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """An absolute URL for an API path (``/v2/...``) or a ``Location`` header value."""
        return urljoin(self.base_url + "/", path)

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: Sequence[str],
        what: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        ok: Iterable[int] = (200,),
        retry: bool = True,
    ) -> requests.Response:
        """Send a request, answering one auth challenge and retrying transient failures.

        ``what`` names the reference or blob for error messages; a status outside ``ok``
        raises :class:`RegistryError` (404 too: callers that probe pass it in ``ok``).
        ``retry=False`` is for requests that must not be replayed (a ``PATCH`` appending to
        an upload): their caller starts over instead, on :class:`TransientRegistryError`.
        """
        scope_key = frozenset(scopes)
        answered_challenge = False
        while True:
            response = self._send_with_retries(
                method,
                path,
                scope_key=scope_key,
                headers=headers,
                params=params,
                body=body,
                stream=stream,
                retries=self.retries if retry else 0,
            )
            if response.status_code == 401 and not answered_challenge:
                challenge_header = response.headers.get("WWW-Authenticate", "")
                response.close()
                self._answer_challenge(parse_challenges(challenge_header), scope_key, what)
                answered_challenge = True
                continue
            if response.status_code in ok:
                return response
            try:
                raise self._status_error(response, method, what)
            finally:
                response.close()

    # sending -----------------------------------------------------------------------------

    def _send_with_retries(
        self,
        method: str,
        path: str,
        *,
        scope_key: frozenset[str],
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        body: Body,
        stream: bool,
        retries: int,
    ) -> requests.Response:
        attempt = 0
        url = self.url(path)
        # An upload Location may point elsewhere (a storage front end): credentials and
        # tokens go only to the registry's own host, as containerd does.
        same_host = urlsplit(url).netloc == urlsplit(self.base_url).netloc
        while True:
            merged = dict(headers or {})
            with self._lock:
                authorization = self._authorization.get(scope_key)
            if authorization is not None and same_host:
                merged["Authorization"] = authorization
            payload = body() if callable(body) else body
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=merged,
                    params=params,
                    data=payload,
                    stream=stream,
                    timeout=_TIMEOUT,
                    allow_redirects=method in ("GET", "HEAD"),
                )
            except requests.exceptions.SSLError as err:
                raise RegistryError(tls_failure_message(self.registry, _reason(err))) from err
            except (requests.ConnectionError, requests.Timeout) as err:
                if attempt >= retries:
                    raise TransientRegistryError(
                        f"cannot reach {self.registry} after {attempt + 1} attempts: {_reason(err)}"
                    ) from err
            else:
                if response.status_code not in _RETRY_STATUSES or attempt >= retries:
                    return response
                response.close()
            finally:
                close = getattr(payload, "close", None)
                if close is not None:
                    close()
            time.sleep(self.backoff_seconds * (2**attempt))
            attempt += 1

    # auth --------------------------------------------------------------------------------

    def _answer_challenge(self, challenges: list[Challenge], scope_key: frozenset[str], what: str) -> None:
        by_scheme = {challenge.scheme: challenge for challenge in challenges}
        if "bearer" in by_scheme:
            token = self._fetch_token(by_scheme["bearer"], scope_key, what)
            authorization = f"Bearer {token}"
        elif "basic" in by_scheme and self.credentials is not None and self.credentials.username:
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            authorization = "Basic " + base64.b64encode(pair).decode()
        else:
            raise RegistryError(self._unauthorized_message(what))
        with self._lock:
            self._authorization[scope_key] = authorization

    def _fetch_token(self, challenge: Challenge, scope_key: frozenset[str], what: str) -> str:
        if not challenge.realm:
            raise RegistryError(f"{self.registry} sent a Bearer challenge without a realm")
        scopes = set(scope_key)
        if challenge.params.get("scope"):
            scopes.update(challenge.params["scope"].split(" "))
        service = challenge.params.get("service", "")
        credentials = self.credentials
        try:
            if credentials is not None and credentials.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": credentials.identity_token,
                    "service": service,
                    "scope": " ".join(sorted(scopes)),
                    "client_id": "kiln",
                }
                response = self.session.post(challenge.realm, data=form, timeout=_TIMEOUT)
            else:
                auth = None
                if credentials is not None and credentials.username:
                    auth = (credentials.username, credentials.password)
                query: list[tuple[str, str]] = [("service", service)] if service else []
                query += [("scope", scope) for scope in sorted(scopes)]
                response = self.session.get(challenge.realm, params=query, auth=auth, timeout=_TIMEOUT)
        except requests.RequestException as err:
            raise RegistryError(
                f"cannot get a token for {what} from {challenge.realm}: {_reason(err)}"
            ) from err
        with response:
            if response.status_code in (401, 403):
                raise RegistryError(self._unauthorized_message(what))
            if response.status_code != 200:
                raise RegistryError(
                    f"the token server {challenge.realm} answered {response.status_code} for {what}"
                )
            try:
                answer = response.json()
                token = answer.get("token") or answer.get("access_token")
            except (ValueError, AttributeError) as err:
                raise RegistryError(f"the token server {challenge.realm} sent no JSON for {what}") from err
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token server {challenge.realm} sent no token for {what}")
        return token

    def _unauthorized_message(self, what: str) -> str:
        if self.credentials is None:
            return (
                f"unauthorized: {self.registry} requires authentication for {what} "
                f"(kiln login {self.registry})"
            )
        return f"unauthorized: {self.registry} refused the credentials for {what}"

    # errors ------------------------------------------------------------------------------

    def _status_error(self, response: requests.Response, method: str, what: str) -> RegistryError:
        status = response.status_code
        detail = _registry_message(response)
        suffix = f": {detail}" if detail else ""
        if status == 401:
            return RegistryError(self._unauthorized_message(what) + suffix)
        if status == 403:
            return RegistryError(f"denied: {self.registry} forbids access to {what} (403){suffix}")
        if status == 404:
            return RegistryError(f"not found: {what} does not exist on {self.registry} (404){suffix}")
        if status == 429:
            retry_after = response.headers.get("Retry-After")
            hint = f"; retry after {retry_after} s" if retry_after else ""
            return RegistryError(
                f"rate limit hit: {self.registry} answered 429 Too Many Requests for {what}{hint}"
            )
        error_type = TransientRegistryError if status >= 500 else RegistryError
        return error_type(f"{method} {what} on {self.registry} failed with HTTP {status}{suffix}")


def _registry_message(response: requests.Response) -> str:
    """The first message of distribution's ``{"errors": [{"code", "message"}]}`` body."""
    try:
        errors = response.json().get("errors")
        first = errors[0]
        return f"{first.get('code', '')} {first.get('message', '')}".strip()
    except (ValueError, AttributeError, IndexError, TypeError, KeyError):
        return ""


def _reason(err: BaseException) -> str:
    """A short reason without URLs' query strings (upload URLs carry state tokens)."""
    text = str(err)
    return text.split("?", 1)[0] if len(text) > 200 else text
