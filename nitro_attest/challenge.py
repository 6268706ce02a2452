"""Challenges: a fresh nonce per attempt, accepted at most once.

A verified document proves what an enclave ran when it made the document, not
that it made it now: anyone who captured one can send it again. A challenge
closes that gap. The relying party issues an unpredictable nonce with an
expiry (:meth:`Challenger.issue`), the enclave puts it into the document it
asks the Nitro Security Module for, and :meth:`Challenger.verify` accepts the
document only if, after every other check has passed, the nonce can be
consumed: it was issued here, has not expired and was not consumed before.

The nonce, never the document's bytes, is the replay key: ECDSA signatures are
malleable, so ``(r, n - s)`` signs the same payload as ``(r, s)`` and a
captured document can be re-sent as different bytes that verify just as well.

Where challenges are kept is a :class:`ChallengeStore`:
:class:`MemoryChallengeStore` (one process) or :class:`RedisChallengeStore`
(any number of processes sharing a Redis server). Both consume atomically, so
of two verifiers racing on one nonce exactly one wins.
"""

from __future__ import annotations

import enum
import hmac
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, runtime_checkable

from cryptography import x509

from ._verify import check_arguments, verify
from .document import MAX_FIELD_SIZE, AttestationDocument
from .errors import PolicyFailure, PolicyViolation
from .policy import Policy

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_MAX_CHALLENGES",
    "DEFAULT_NONCE_SIZE",
    "MAX_LIFETIME",
    "MIN_NONCE_SIZE",
    "Challenge",
    "ChallengeStore",
    "Challenger",
    "ConsumeResult",
    "MemoryChallengeStore",
    "RedisChallengeStore",
    "RedisClient",
    "check_policy",
]

#: How long an issued challenge can be answered, unless the Challenger is told otherwise.
DEFAULT_LIFETIME = timedelta(minutes=5)
#: Bytes of randomness per nonce, unless the Challenger is told otherwise.
DEFAULT_NONCE_SIZE = 32
#: Fewer random bytes than this could be guessed or collide; refused.
MIN_NONCE_SIZE = 16
#: The longest a challenge may be answerable (a leaf certificate lives ~3 hours).
MAX_LIFETIME = timedelta(days=1)
#: The most challenges a MemoryChallengeStore remembers by default (outstanding or used).
DEFAULT_MAX_CHALLENGES = 100_000

_ONE_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _check_nonce(nonce: object) -> bytes:
    if not isinstance(nonce, bytes):
        raise TypeError(f"nonce must be bytes, not {type(nonce).__name__}")
    if not nonce:
        raise ValueError("nonce is empty")
    return nonce


def _check_time(name: str, moment: object) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TypeError(f"{name} must be timezone-aware (a naive datetime's zone is a guess)")
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class Challenge:
    """A nonce to send to the enclave, and the instant after which it is refused.

    The enclave must ask the NSM for a document whose ``nonce`` field is
    exactly :attr:`nonce`; the document is accepted while the verifier's
    clock reads before :attr:`expires_at`, once.
    """

    nonce: bytes
    expires_at: datetime

    def __post_init__(self) -> None:
        _check_nonce(self.nonce)
        _check_time("expires_at", self.expires_at)


class ConsumeResult(enum.Enum):
    """What :meth:`ChallengeStore.consume` found; only ``CONSUMED`` accepts."""

    #: The nonce was outstanding and unexpired, and is now used: this caller won.
    CONSUMED = "consumed"
    #: Never issued by this store, or forgotten (evicted, or expired and purged).
    UNKNOWN = "unknown"
    #: Issued, but its expiry has passed.
    EXPIRED = "expired"
    #: Issued and already consumed once: a replay, or a client that retried.
    ALREADY_USED = "already used"


@runtime_checkable
class ChallengeStore(Protocol):
    """Where outstanding challenges are kept between :meth:`Challenger.issue` and :meth:`Challenger.verify`.

    Both operations take the caller's ``now`` (timezone-aware), so one clock,
    the Challenger's, decides every expiry.
    """

    def add(self, nonce: bytes, expires_at: datetime, now: datetime) -> None:
        """Remembers ``nonce`` as outstanding until ``expires_at``; ``ValueError`` if it is already known."""
        ...

    def consume(self, nonce: bytes, now: datetime) -> ConsumeResult:
        """Marks ``nonce`` used; ``CONSUMED`` for exactly one caller, only while ``now < expires_at``.

        Must be atomic: of any number of concurrent calls with one nonce, at
        most one returns ``CONSUMED`` (for as long as the store keeps its
        writes: see :class:`RedisChallengeStore` on failover).
        """
        ...


@dataclass(slots=True)
class _Entry:
    expires_at: datetime
    used: bool = False


class MemoryChallengeStore:
    """Challenges in this process's memory: for one process (any number of threads).

    Thread-safe: a lock makes :meth:`consume` atomic. Bounded: it remembers
    at most ``max_challenges`` challenges, outstanding or used (a used one is
    kept until its expiry so that a replay is refused as "already used").
    When a challenge is issued, expired ones are purged from the oldest up to
    the first that has not expired (with one lifetime per store that is all
    of them; a late answer is then refused as "unknown" instead of
    "expired", as with Redis). When a
    new challenge would exceed the bound, the oldest one is evicted, whatever
    its state: a client whose challenge was evicted is refused ("unknown")
    and must ask again. Eviction never lets through a document that would
    otherwise be refused; it only costs availability, so rate-limit who may
    ask for challenges.

    Every process has its own store: behind a load balancer with several
    processes use :class:`RedisChallengeStore`, or a challenge issued by one
    process is unknown to the others.
    """

    def __init__(self, *, max_challenges: int = DEFAULT_MAX_CHALLENGES) -> None:
        if type(max_challenges) is not int:
            raise TypeError(f"max_challenges must be an int, not {type(max_challenges).__name__}")
        if max_challenges < 1:
            raise ValueError(f"max_challenges must be at least 1, got {max_challenges}")
        self._max_challenges = max_challenges
        self._lock = threading.Lock()
        # In issue order, so the oldest challenge is the first one.
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    @property
    def max_challenges(self) -> int:
        """The most challenges remembered at once."""
        return self._max_challenges

    def __len__(self) -> int:
        """How many challenges are remembered (outstanding or used, expired or not)."""
        with self._lock:
            return len(self._entries)

    def add(self, nonce: bytes, expires_at: datetime, now: datetime) -> None:
        nonce = _check_nonce(nonce)
        expires_at = _check_time("expires_at", expires_at)
        now = _check_time("now", now)
        if expires_at <= now:
            raise ValueError(f"expires_at {expires_at.isoformat()} is not after now {now.isoformat()}")
        with self._lock:
            if nonce in self._entries:
                raise ValueError("this nonce was already issued; nonces must be fresh random bytes")
            # In issue order the first entries are also the first to expire (for
            # one lifetime), so expired ones are purged from the front, as Redis
            # drops them by TTL; then, if still full, the oldest live one goes.
            while self._entries and (
                next(iter(self._entries.values())).expires_at <= now or len(self._entries) >= self._max_challenges
            ):
                self._entries.popitem(last=False)
            self._entries[nonce] = _Entry(expires_at)

    def consume(self, nonce: bytes, now: datetime) -> ConsumeResult:
        nonce = _check_nonce(nonce)
        now = _check_time("now", now)
        with self._lock:
            entry = self._entries.get(nonce)
            if entry is None:
                return ConsumeResult.UNKNOWN
            if entry.used:
                return ConsumeResult.ALREADY_USED
            if entry.expires_at <= now:
                del self._entries[nonce]
                return ConsumeResult.EXPIRED
            entry.used = True
            return ConsumeResult.CONSUMED


class RedisClient(Protocol):
    """The two commands :class:`RedisChallengeStore` needs, as redis-py's ``Redis`` offers them.

    A ``redis.Redis`` (or any client with the same ``set`` and ``delete``)
    fits; an asyncio client does not.
    """

    def set(
        self,
        name: str,
        value: str,
        *,
        px: int | None = None,
        nx: bool = False,
        xx: bool = False,
        keepttl: bool = False,
        get: bool = False,
    ) -> Any: ...

    def delete(self, *names: str) -> Any: ...


_USED = "used"


class RedisChallengeStore:
    """Challenges in Redis (6.2 or later), shared by every process that uses the same server.

    One key per challenge, ``prefix`` + the nonce in hex, whose value is the
    expiry in milliseconds since 1970 and whose TTL is the time left, so
    Redis forgets a challenge when it expires. :meth:`add` is ``SET key
    expiry PX ttl NX``. :meth:`consume` is one atomic ``SET key used XX
    KEEPTTL GET``: it replaces the value by a "used" mark only if the key
    exists, and returns what was there, so of any number of racing
    processes exactly one sees the expiry and wins; the others see "used".
    The mark lives until the challenge's expiry, so a replay within it is
    reported as "already used" (later, as "unknown").

    ``client`` is a synchronous redis-py client (``redis.Redis.from_url(...)``,
    with socket timeouts), with or without ``decode_responses``. Its errors
    propagate (``redis.RedisError``): an unreachable store accepts nothing.
    This module does not import ``redis``. ``prefix`` names the keys of one
    service: two services with one prefix on one server accept each other's
    challenges, so there is no default.

    What the guarantee rests on, for the operator:

    - **Redis keeps the "used" mark.** A failover to a replica that had not
      received it, or a restart from a snapshot taken before it, brings the
      challenge back, and one replay within its lifetime could then be
      accepted. Run Redis without failover and with ``appendfsync always``
      (or no persistence: a restart then forgets every challenge, which only
      refuses), or keep lifetimes short.
    - **Only this service writes under ``prefix``.** Whoever can write a key
      there can mint a challenge; use Redis ACLs.
    - **Memory is the operator's to bound**: each outstanding challenge is a
      key until it expires, so rate-limit who may ask for challenges.
    - A client library that retries a command whose reply was lost can turn
      an ``add`` into "already issued" (``ValueError``) and a ``consume`` into
      "already used": both refuse, neither accepts.
    """

    def __init__(self, client: RedisClient, *, prefix: str) -> None:
        if not callable(getattr(client, "set", None)) or not callable(getattr(client, "delete", None)):
            raise TypeError(
                f"client must be a redis-py style client with set() and delete(), not {type(client).__name__}"
            )
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        if not prefix:
            raise ValueError("prefix is empty: name this service's keys, e.g. 'myservice:challenge:'")
        self._client = client
        self._prefix = prefix

    @property
    def client(self) -> RedisClient:
        """The Redis client the challenges are kept through."""
        return self._client

    @property
    def prefix(self) -> str:
        """What every key of this store starts with."""
        return self._prefix

    def key(self, nonce: bytes) -> str:
        """The Redis key that holds ``nonce``'s challenge."""
        return self._prefix + _check_nonce(nonce).hex()

    def add(self, nonce: bytes, expires_at: datetime, now: datetime) -> None:
        key = self.key(nonce)
        expires_at = _check_time("expires_at", expires_at)
        now = _check_time("now", now)
        if expires_at <= now:
            raise ValueError(f"expires_at {expires_at.isoformat()} is not after now {now.isoformat()}")
        # Rounded up: the key must outlive the challenge, never the reverse.
        ttl_ms = math.ceil((expires_at - now) / _ONE_MS)
        if not self._client.set(key, str(_milliseconds(expires_at)), px=ttl_ms, nx=True):
            raise ValueError("this nonce was already issued; nonces must be fresh random bytes")

    def consume(self, nonce: bytes, now: datetime) -> ConsumeResult:
        key = self.key(nonce)
        now = _check_time("now", now)
        previous = self._client.set(key, _USED, xx=True, keepttl=True, get=True)
        if previous is None:
            return ConsumeResult.UNKNOWN
        if isinstance(previous, bytes):
            previous = previous.decode("ascii", "replace")
        if previous == _USED:
            return ConsumeResult.ALREADY_USED
        if not isinstance(previous, str) or not (previous.isascii() and previous.isdigit()):
            # Not a value this store writes: refuse rather than guess what it means.
            return ConsumeResult.UNKNOWN
        if int(previous) <= _milliseconds(now):
            # Our clock says it expired before Redis dropped it. Forget it, so
            # a later attempt says "unknown" rather than "already used".
            self._client.delete(key)
            return ConsumeResult.EXPIRED
        return ConsumeResult.CONSUMED


def _milliseconds(moment: datetime) -> int:
    # Rounded up, as for the TTL: a challenge never ends earlier in Redis than on our clock.
    return math.ceil((moment - _EPOCH) / _ONE_MS)


def check_policy(policy: Policy) -> None:
    """``ValueError`` if ``policy`` pins a nonce itself: with a :class:`Challenger`, the challenge supplies it.

    :meth:`Challenger.verify` calls it; call it when a service loads its
    policy, to refuse such a configuration at start rather than per request.
    """
    if any(alternative.nonce is not None for alternative in (policy.alternatives or (policy,))):
        raise ValueError("policy pins a nonce; with a Challenger the challenge supplies it (leave nonce unset)")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


_REFUSALS = {
    ConsumeResult.UNKNOWN: (
        "the document's nonce is unknown: it was not issued here, or expired and was forgotten, or was evicted"
    ),
    ConsumeResult.EXPIRED: "the document's nonce is expired: its challenge was answered too late",
    ConsumeResult.ALREADY_USED: "the document's nonce was already used: this is a replay (or a retry)",
}


class Challenger:
    """Issues challenges and accepts each answer once.

    ``store`` keeps the outstanding challenges (default: a new
    :class:`MemoryChallengeStore`); ``lifetime`` is how long a challenge can
    be answered, and also the oldest document accepted; ``nonce_size`` the
    random bytes per nonce (16..1024). ``clock`` returns the current time
    (timezone-aware); it decides expiries and is the verification time.
    Replace it only in tests.
    """

    def __init__(
        self,
        store: ChallengeStore | None = None,
        *,
        lifetime: timedelta = DEFAULT_LIFETIME,
        nonce_size: int = DEFAULT_NONCE_SIZE,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if store is None:
            store = MemoryChallengeStore()
        elif not isinstance(store, ChallengeStore):
            raise TypeError(
                f"store must be a ChallengeStore (add and consume), not {type(store).__name__}; "
                "for Redis, wrap the client: RedisChallengeStore(client)"
            )
        if not isinstance(lifetime, timedelta):
            raise TypeError(f"lifetime must be a timedelta, not {type(lifetime).__name__}")
        if not _ONE_MS <= lifetime <= MAX_LIFETIME:
            raise ValueError(f"lifetime must be from a millisecond to {MAX_LIFETIME}, got {lifetime!r}")
        if type(nonce_size) is not int:
            raise TypeError(f"nonce_size must be an int, not {type(nonce_size).__name__}")
        if not MIN_NONCE_SIZE <= nonce_size <= MAX_FIELD_SIZE:
            raise ValueError(f"nonce_size must be {MIN_NONCE_SIZE}..{MAX_FIELD_SIZE} bytes, got {nonce_size}")
        if not callable(clock):
            raise TypeError("clock must be a callable returning a timezone-aware datetime")
        self._store = store
        self._lifetime = lifetime
        self._nonce_size = nonce_size
        self._clock = clock

    @property
    def store(self) -> ChallengeStore:
        """Where the outstanding challenges are kept."""
        return self._store

    @property
    def lifetime(self) -> timedelta:
        """How long a challenge can be answered; also the oldest document accepted."""
        return self._lifetime

    @property
    def nonce_size(self) -> int:
        """Random bytes per nonce."""
        return self._nonce_size

    def now(self) -> datetime:
        """The current time by this Challenger's clock."""
        return _check_time("clock()", self._clock())

    def issue(self) -> Challenge:
        """A new challenge, remembered in the store until it expires."""
        now = self.now()
        challenge = Challenge(secrets.token_bytes(self.nonce_size), now + self.lifetime)
        self.store.add(challenge.nonce, challenge.expires_at, now)
        return challenge

    def verify(
        self,
        data: bytes,
        policy: Policy,
        *,
        challenge: Challenge | bytes | None = None,
        roots: Sequence[x509.Certificate] | None = None,
    ) -> AttestationDocument:
        """Verifies ``data`` under ``policy`` now, then consumes its nonce; returns the document.

        In this order: everything :func:`nitro_attest.verify` checks, at the
        clock's time; the document carries a nonce (equal to ``challenge``,
        the one issued to this client, when given); it is no older than the
        lifetime; and last, its nonce is consumed in the store. Bytes that
        fail a check therefore never use up a nonce, and a document is
        returned only to the one caller whose consume succeeded.

        ``policy`` must not pin a nonce itself (``ValueError``): the
        challenge supplies it. Raises what :func:`nitro_attest.verify`
        raises, and :class:`~nitro_attest.PolicyViolation` with code
        ``nonce`` (no nonce, not the expected one, unknown, expired, or
        already used: the message says which) or ``stale``.
        """
        now = self.now()
        now, roots = check_arguments(policy, now, roots)
        check_policy(policy)
        if challenge is not None and not isinstance(challenge, Challenge | bytes):
            raise TypeError(f"challenge must be a Challenge or bytes, not {type(challenge).__name__}")
        expected = challenge.nonce if isinstance(challenge, Challenge) else challenge
        if expected is not None:
            _check_nonce(expected)

        document = verify(data, policy, at=now, roots=roots)
        nonce = document.nonce
        if not nonce:
            raise PolicyViolation("nonce", "the document carries no nonce: it does not answer a challenge")
        if expected is not None and not hmac.compare_digest(nonce, expected):
            raise PolicyViolation(
                "nonce",
                "the document's nonce is not the challenge issued to this client",
                (
                    PolicyFailure(
                        "nonce",
                        "the document's nonce is not the challenge issued to this client",
                        expected=(expected.hex(),),
                        actual=nonce.hex(),
                    ),
                ),
            )
        # The nonce already proves the document is younger than its challenge;
        # this bounds it again by the enclave's own timestamp (belt and braces).
        if now - document.timestamp > self.lifetime:
            raise PolicyViolation(
                "stale",
                f"document was made at {document.timestamp.isoformat()}, more than the challenge lifetime "
                f"{self.lifetime} before {now.isoformat()}",
            )

        # Now, not the time verification started: a slow verification must not
        # let an answer in after its challenge expired.
        result = self._store.consume(nonce, self.now())
        if result is ConsumeResult.CONSUMED:
            return document
        refusal = _REFUSALS.get(result) if isinstance(result, ConsumeResult) else None
        if refusal is None:
            # Only CONSUMED accepts: a store that answers True (or anything else) is a bug, not a yes.
            raise TypeError(f"{type(self.store).__name__}.consume returned {result!r}, not a ConsumeResult")
        raise PolicyViolation("nonce", refusal)
