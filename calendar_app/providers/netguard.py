"""Where a user-entered address may lead: public internet only, unless an administrator
allowed the host.

Three layers, because a check of the URL alone can be walked around:

* :func:`check_url` resolves the host before a request (and before every redirect is
  followed) and refuses it when *any* of its addresses is not public, so a DNS answer that
  mixes a public and a private address cannot pick the private one at connect time;
* :func:`guarded_session` checks the address each new connection actually reached
  (``getpeername``), so a name that resolves to something else between the check and the
  connect (DNS rebinding) still cannot reach a blocked address; it never uses proxies or
  ``.netrc`` from the environment;
* :func:`deadline` bounds the wall-clock time of everything the guarded connections do
  inside it, since requests' timeout applies to each socket operation and a server that
  drips a byte at a time never trips it.

A user's URL may itself be a secret (a calendar's private address), so the guarded session
also keeps paths out of urllib3's log lines, and nothing here names more than the host.

Hand-written on purpose: ``advocate`` is unmaintained (last release 2020, pins old
urllib3), and the maintained ``requests-hardened`` pins the first resolved address only,
knows no per-host allow-list (loopback on or off for everything) and has no total deadline.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.poolmanager import PoolManager

from calendar_app.providers import ProviderError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BLOCKED_MESSAGE = "the address points to a private or local network"

# Named ranges first, so a refusal says why; ``is_global`` is the catch-all after them.
# The list is explicit because Python 3.11's ``is_global`` still calls multicast, 6to4,
# 192.0.0.0/24 and some IPv6 special ranges global (fixed only in later patch releases).
_V4_RANGES: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified ('this network', reaches the local host)"),
        ("10.0.0.0/8", "private network"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT, some cloud metadata)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private network"),
        ("192.0.0.0/24", "IETF protocol assignments (some cloud metadata)"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private network"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved (incl. broadcast)"),
    )
)
_V6_RANGES: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo tunnel"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4 tunnel"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
        ("fc00::/7", "private network (unique local, incl. AWS metadata fd00:ec2::254)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# The well-known NAT64 prefix carries a public IPv4 address on IPv6-only networks (DNS64),
# so the embedded address is judged instead of refusing the prefix.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")


def _normal_host(host: str) -> str:
    """Lower-case, without brackets or a final dot; an IP literal in its canonical form."""
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host.isascii():
        with suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    return host


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts may be reached although their addresses are not public."""

    allowed_hosts: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "allowed_hosts", frozenset(_normal_host(h) for h in self.allowed_hosts)
        )

    @classmethod
    def from_setting(cls, text: str) -> AddressPolicy:
        """Parse ``SOURCE_ALLOWED_HOSTS``: host names or IP literals, comma or space separated.

        Raises ``ValueError`` naming the first entry that is neither (a URL, a port, a
        network range), so a bad setting stops start-up.
        """
        hosts = [_normal_host(entry) for entry in re.split(r"[\s,]+", text or "") if entry]
        for host in hosts:
            if not _is_ip(host) and not _HOST_NAME.fullmatch(host):
                raise ValueError(
                    f"SOURCE_ALLOWED_HOSTS: {host!r} is not a host name or an IP address"
                )
        return cls(frozenset(hosts))

    def allows(self, host: str) -> bool:
        """Whether an administrator allowed this host (compared by name, never by address)."""
        return _normal_host(host) in self.allowed_hosts


PUBLIC_ONLY = AddressPolicy()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be reached from a user-entered URL, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{reason}, inside an IPv6 address" if reason else None
        for net6, reason in _V6_RANGES:
            if ip in net6:
                return reason
        if ip not in _GLOBAL_UNICAST:
            return "outside the IPv6 global unicast range"
    else:
        for net4, reason in _V4_RANGES:
            if ip in net4:
                return reason
    if ip.is_multicast:
        return "multicast"
    if not ip.is_global:
        return "not a public address"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host``."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [
        ipaddress.ip_address(sockaddr[0])
        for family, _, _, _, sockaddr in answers
        if family in (socket.AF_INET, socket.AF_INET6)
    ]


def check_url(url: str, policy: AddressPolicy) -> None:
    """Refuse ``url`` with a :class:`ProviderError` unless its host is public or allowed."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ProviderError("source.url", "the address has an invalid port") from None
    if not host:
        raise ProviderError("source.url", "the address names no host")
    if policy.allows(host):
        return
    if _is_ip(host):
        addresses = [ipaddress.ip_address(host)]
    else:
        try:
            addresses = _resolve(host, port or (443 if parts.scheme == "https" else 80))
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise ProviderError("source.unreachable", "the host name could not be resolved")
    if any(blocked_reason(address) for address in addresses):
        raise ProviderError("source.address_blocked", BLOCKED_MESSAGE)


class AddressBlocked(requests.ConnectionError):
    """A guarded connection reached an address that is not public."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} connected to {address} ({reason}), which is not allowed")
        self.host = host
        self.address = address
        self.reason = reason


class Deadline:
    """A wall-clock limit: when it passes, every socket enrolled in it is shut down."""

    def __init__(self, seconds: float) -> None:
        self._ends = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._expired = False
        # Each enrolled socket with our own duplicate of its descriptor: shutting the
        # duplicate down wakes a read blocked on the original, TLS or not, and the
        # duplicate cannot be closed (and its number reused) behind our back.
        self._sockets: dict[int, tuple[Any, socket.socket]] = {}
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        """Whether the limit has passed (and the enrolled sockets were shut down)."""
        with self._lock:
            return self._expired

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._ends - time.monotonic())

    def enrol(self, sock: Any) -> None:
        """Shut ``sock`` down when the limit passes (at once if it has passed)."""
        with self._lock:
            if id(sock) in self._sockets:
                return
            try:
                duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
            except (OSError, ValueError):
                return
            self._sockets[id(sock)] = (sock, duplicate)
            if self._expired:
                _shut(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for _, duplicate in self._sockets.values():
                _shut(duplicate)

    def _close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for _, duplicate in self._sockets.values():
                duplicate.close()
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_ACTIVE_DEADLINE: ContextVar[Deadline | None] = ContextVar("active_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Bound what guarded connections do in this block to ``seconds`` of wall-clock time.

    When it passes, their sockets are shut down, so the request fails or its body ends
    early: the caller must check :attr:`Deadline.expired` before trusting any result.
    """
    clock = Deadline(seconds)
    token = _ACTIVE_DEADLINE.set(clock)
    clock._timer.start()
    try:
        yield clock
    finally:
        _ACTIVE_DEADLINE.reset(token)
        clock._close()


@contextmanager
def time_limit(seconds: float) -> Iterator[Deadline]:
    """:func:`deadline`, with whatever it cut short reported as ``source.timeout``."""
    with deadline(seconds) as clock:
        try:
            yield clock
        except ProviderError:
            if clock.expired:  # the shutdown at the deadline made it fail
                raise _too_slow(seconds) from None
            raise
        if clock.expired:  # an answer may have been cut short
            raise _too_slow(seconds)


def _too_slow(seconds: float) -> ProviderError:
    return ProviderError("source.timeout", f"the server did not answer within {seconds:g} seconds")


def _enrol(sock: Any) -> None:
    clock = _ACTIVE_DEADLINE.get()
    if clock is not None and sock is not None:
        clock.enrol(sock)


class _CheckedConnection(HTTPConnection):
    """An HTTP connection that refuses a peer address that is not public."""

    def __init__(self, *args: Any, policy: AddressPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        # Checked right after the TCP connect, before a byte (or a TLS hello) is sent.
        sock = super()._new_conn()
        if not self.policy.allows(self.host):
            address = ipaddress.ip_address(sock.getpeername()[0])
            reason = blocked_reason(address)
            if reason:
                sock.close()
                raise AddressBlocked(self.host, str(address), reason)
        _enrol(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        # A kept-alive connection serving a new request joins the current deadline too.
        _enrol(self.sock)
        super().request(*args, **kwargs)


class _CheckedHTTPSConnection(_CheckedConnection, HTTPSConnection):
    """The HTTPS variant; the check runs before the TLS handshake."""


class _GuardedPoolManager(PoolManager):
    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.ConnectionCls = _CheckedHTTPSConnection if scheme == "https" else _CheckedConnection
        pool.conn_kw["policy"] = self.policy
        return pool


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _GuardedPoolManager(
            self.policy, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through a proxy the peer is the proxy, and the check would prove nothing.
        raise requests.exceptions.ProxyError("the guarded session never uses a proxy")

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().send(request, *args, **kwargs)
        except requests.ConnectionError as exc:
            # urllib3 and requests wrap what the connection raised; say it plainly.
            blocked = _blocked_in(exc)
            if blocked is None:
                raise
            raise AddressBlocked(blocked.host, blocked.address, blocked.reason) from None


def _blocked_in(exc: BaseException) -> AddressBlocked | None:
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, AddressBlocked):
            return current
        seen.add(id(current))
        todo.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        todo.extend(current.args)
    return None


class _HidePaths(logging.Filter):
    """urllib3 logs request paths (at DEBUG, and whole URLs in some warnings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_path(arg) for arg in record.args)
        return True


def _without_path(arg: object) -> object:
    if not isinstance(arg, str):
        return arg
    if arg.startswith("/"):
        return "/..."
    if "://" in arg:
        parts = urlsplit(arg)
        with suppress(ValueError):
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{parts.hostname or ''}{port}/..."
        return "..."
    return arg


_HIDE_PATHS = _HidePaths()
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry")


def guarded_session(policy: AddressPolicy) -> requests.Session:
    """A requests session whose connections only reach public addresses or allowed hosts."""
    for name in _URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if _HIDE_PATHS not in logger.filters:
            logger.addFilter(_HIDE_PATHS)
    session = requests.Session()
    session.trust_env = False  # no proxies, certificates or .netrc from the environment
    session.max_redirects = MAX_REDIRECTS
    adapter = _GuardedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # Where a library lets requests follow redirects itself, each target is checked before
    # it is followed (requests runs response hooks first), so no connection is ever opened
    # to a refused address; the check on the socket stays for DNS rebinding.
    session.hooks["response"].append(_redirect_guard(policy))
    return session


MAX_REDIRECTS = 3


def _redirect_guard(policy: AddressPolicy) -> Callable[..., None]:
    def check(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if not response.is_redirect:
            return
        target = urljoin(response.url, response.headers.get("location", ""))
        try:
            check_url(target, policy)
        except ProviderError:
            response.close()
            raise

    return check


class AnswerTooLarge(Exception):
    """An answer grew beyond the size cap while it arrived."""


def size_cap(max_bytes: int) -> Callable[..., None]:
    """A response hook reading each answer's body with a limit, for libraries that read
    bodies themselves (they then find it already in ``content``)."""

    def read_capped(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # A response hook runs before requests reads the body, so it can be read here.
        length = response.headers.get("content-length", "")
        parts: list[bytes] = []
        size = 0
        with response:
            if length.isdigit() and int(length) > max_bytes:
                raise AnswerTooLarge
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise AnswerTooLarge
                parts.append(chunk)
        response._content = b"".join(parts)

    return read_capped
