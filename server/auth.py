"""Caller identity for HTTP: the bearer token's user, set per request by the auth middleware."""

from contextvars import ContextVar

_user: ContextVar[str | None] = ContextVar("memsweep_user", default=None)


def current_user() -> str | None:
    return _user.get()


def set_user(user: str | None):  # type: ignore[no-untyped-def]
    return _user.set(user)
