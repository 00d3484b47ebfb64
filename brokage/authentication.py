"""How an API request proves who it is: a JWT bearer token whose claims say who and what.

The access token carries the principal's role and tier rate limit as claims, stamped when it was
issued (`principal_claims`), so authenticating a request reads no database: the per-request user
lookup was one query on the customers database for every API call. What could make those claims
wrong is a later change of the person's `active` flag, role or tier; the customers context reports
each such change with `principal_changed`, and a token whose claims are older than the person's
last change is authenticated the old way, by reading the user (inactive: 401; otherwise its current
role and tier apply). So a deactivation, a demotion or a tier change still takes effect on the very
next request, and clients never see the difference.

Trade-offs, knowingly taken:
- one Redis round trip per request instead of one PostgreSQL query: the marker of the person's last
  change, read in the same MULTI that counts the request for the rate limit (brokage/ratelimit.py)
  and, when the request carries an `Idempotency-Key`, claims that key (`PrincipalRoundTrip`);
- a change to a tier's definition (its `rate_limit`) reaches the tokens issued after it only, i.e.
  within `SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]`: a rate limit is not an access boundary;
- when Redis cannot be read, requests fall back to reading the user (slower, still correct);
- a marker lives in Redis for one token lifetime (plus slack). A Redis that loses it (a restart
  without persistence) would let a token stamped before the change act on its old claims until it
  expires. `principal_changed` runs inside the change's transaction too, so a change is refused
  rather than made without its marker when Redis is down.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import router, transaction
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from redis.exceptions import RedisError
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from brokage.auth import Role, principal_of
from brokage.ratelimit import USER_WINDOW_SECONDS, CountedRequest, rate_limit_count, user_subject
from brokage.redis import get_redis

logger = logging.getLogger(__name__)

ROLE_CLAIM = "role"
RATE_LIMIT_CLAIM = "rate_limit"
# When the user row the claims come from was read (Unix time, float), compared with the last change.
CLAIMS_AT_CLAIM = "claims_at"
PRINCIPAL_CLAIMS = (ROLE_CLAIM, RATE_LIMIT_CLAIM, CLAIMS_AT_CLAIM)
CHANGED_KEY = "brokage:auth:principal-changed:{user_id}"
# A marker outlives every access token stamped before it, plus this much clock skew between hosts.
CHANGED_SLACK_SECONDS = 300
# Access tokens whose signature this process has verified, by their exact bytes: a client sends
# the same token with every request, and decoding and verifying it (base64, JSON, HMAC) cost
# ~0.1 ms each time. Only the expiry changes with time, and it is checked on every hit.
VERIFIED_TOKENS_MAX = 4096
_verified_tokens: dict[bytes, object] = {}


def principal_claims(user, *, read_at: float) -> dict:
    """The claims that let the API authenticate a token without reading `user` again.

    `read_at` must be taken before `user` was read, so a change that commits while the token is
    being issued is never missed.
    """
    return {
        ROLE_CLAIM: principal_of(user).role,
        RATE_LIMIT_CLAIM: int(user.rate_limit_per_minute),
        CLAIMS_AT_CLAIM: read_at,
    }


def principal_changed(user_id: int) -> None:
    """From now on, tokens of `user_id` stamped before now are checked against the user row (its
    `active` flag, role or tier changed). Raises RedisError when the marker cannot be written."""
    lifetime = int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds())
    get_redis().set(CHANGED_KEY.format(user_id=user_id), repr(time.time()), ex=lifetime + CHANGED_SLACK_SECONDS)


class TokensRevokedOnPasswordChange:
    """A password "validator" that validates nothing: Django calls `password_changed` after a user
    with a new password is saved, whichever path set it. Tokens carry a digest of the password hash
    (simplejwt's `CHECK_REVOKE_TOKEN`), which only a token authenticated by reading the user is
    checked against; marking the person changed makes every earlier access token take that path,
    so it is refused on its next request. A refresh token always reads the user."""

    def validate(self, password, user=None) -> None:
        return None

    def password_changed(self, password, user=None) -> None:
        if user is None or user.pk is None:
            return
        principal_changed(user.pk)
        # Again after commit: a token issued while the change's transaction was open had the old hash.
        transaction.on_commit(lambda: principal_changed(user.pk), using=router.db_for_write(type(user)), robust=True)

    def get_help_text(self) -> str:
        return "Changing the password signs you out everywhere: every earlier token stops working."


class TokenPrincipal:
    """`request.user` of a request authenticated by its token's claims: an id, a role, a rate limit."""

    is_authenticated = True
    is_anonymous = False
    is_active = True  # tokens are issued to active people only; a deactivation marks the claims stale

    def __init__(self, user_id: int, role: str, rate_limit_per_minute: int) -> None:
        self.pk = self.id = user_id
        self.role = role
        self.rate_limit_per_minute = rate_limit_per_minute

    @property
    def is_superuser(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_staff(self) -> bool:
        return self.role == Role.ADMIN

    def __str__(self) -> str:
        return f"user {self.pk} ({self.role})"


class PrincipalRoundTrip:
    """The one Redis round trip that authenticates a token by its claims: the marker of the person's
    last change and, when rate limits are on, the count of this request in its window
    (brokage.ratelimit). Queued on a MULTI that may carry other commands (an idempotency key's claim,
    brokage/idempotency.py, which runs first and leaves it on the request for authentication)."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.counting = getattr(settings, "RATE_LIMIT_ENABLED", True)
        self.changed_at: bytes | None = None
        self.counted: CountedRequest | None = None
        self.done = False

    def queue(self, pipeline) -> None:
        pipeline.get(CHANGED_KEY.format(user_id=self.user_id))
        if self.counting:
            self._window = rate_limit_count(pipeline, user_subject(self.user_id), window_seconds=USER_WINDOW_SECONDS)

    def read(self, replies: list) -> None:
        """Take this round trip's replies (those of the commands `queue` added, in order)."""
        self.changed_at = replies[0]
        if self.counting:
            window_index, at = self._window
            self.counted = CountedRequest(
                subject=user_subject(self.user_id), window_index=window_index, count=replies[1], at=at
            )
        self.done = True

    def run(self) -> None:
        pipeline = get_redis().pipeline(transaction=True)
        self.queue(pipeline)
        self.read(pipeline.execute())


class PrincipalTokenAuthentication(JWTAuthentication):
    """JWT bearer authentication that trusts the token's principal claims unless the person changed
    after they were stamped. Tokens without those claims (e.g. made by simplejwt's
    `RefreshToken.for_user`) are authenticated by reading the user, as simplejwt does."""

    _round_trip: PrincipalRoundTrip | None = None

    def __init__(self) -> None:
        """simplejwt looks the user model up here, and DRF makes an instance per request: only a token
        authenticated by reading the user needs it (`user_model`)."""

    @property
    def user_model(self):
        return get_user_model()

    def authenticate(self, request):
        # Made already, with the idempotency key's claim, when the request carried one.
        self._round_trip = getattr(request, "principal_round_trip", None)
        return super().authenticate(request)

    def get_validated_token(self, raw_token):
        token = _verified_tokens.get(raw_token)
        if token is not None and token.payload.get("exp", 0) > time.time():
            return token
        token = super().get_validated_token(raw_token)
        if len(_verified_tokens) >= VERIFIED_TOKENS_MAX:
            _verified_tokens.clear()
        _verified_tokens[raw_token] = token
        return token

    def get_user(self, validated_token):
        if not all(claim in validated_token for claim in PRINCIPAL_CLAIMS):
            return super().get_user(validated_token)
        try:
            user_id = int(validated_token[jwt_settings.USER_ID_CLAIM])
            role = Role(validated_token[ROLE_CLAIM])
            rate_limit = int(validated_token[RATE_LIMIT_CLAIM])
            claims_at = float(validated_token[CLAIMS_AT_CLAIM])
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("Token contained malformed principal claims.") from None
        round_trip = self._round_trip
        if round_trip is None or round_trip.user_id != user_id or not round_trip.done:
            round_trip = PrincipalRoundTrip(user_id)
            try:
                round_trip.run()
            except RedisError:
                logger.warning("principal change markers unreadable: reading the user", exc_info=True)
                return super().get_user(validated_token)
        changed_at = round_trip.changed_at
        if changed_at is not None and float(changed_at) >= claims_at:
            user = super().get_user(validated_token)  # stamped before the last change: the user row decides
        else:
            user = TokenPrincipal(user_id, role, rate_limit)
        if round_trip.counted is not None:
            user.counted_request = round_trip.counted
        return user


def bearer_token(request):
    """`request`'s bearer access token, its signature and expiry checked (nothing read); None without
    one. Raises `AuthenticationFailed` for a token that is not valid."""
    authentication = PrincipalTokenAuthentication()
    header = authentication.get_header(request)
    raw_token = None if header is None else authentication.get_raw_token(header)
    if raw_token is None:
        return None
    return authentication.get_validated_token(raw_token)


def token_user_id(token) -> int:
    try:
        return int(token[jwt_settings.USER_ID_CLAIM])
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("Token contained no recognizable user identification.") from None


def principal_round_trip_for(token) -> PrincipalRoundTrip | None:
    """The round trip that will authenticate `token`, if its claims are what authenticates it."""
    if not all(claim in token for claim in PRINCIPAL_CLAIMS):
        return None
    return PrincipalRoundTrip(token_user_id(token))


class PrincipalTokenScheme(SimpleJWTScheme):
    """The OpenAPI security scheme: the same bearer JWT as simplejwt's (`jwtAuth`)."""

    target_class = PrincipalTokenAuthentication
