"""Bearer tokens for the HTTP transport: `memsweep token USER` mints one, stored as a SHA-256 hash.

The SDK's bearer middleware asks `TokenVerifier.verify_token` on every request and answers 401 before any
tool runs when it returns None; the user a token maps to travels as the access token's `client_id`.
"""

import hashlib
import secrets
from pathlib import Path

from mcp.server.auth.provider import AccessToken
from memsweep.storage import access
from memsweep.storage.stores.metadata import MetadataStore, sqlite_url
from memsweep.storage.stores.schema import api_tokens
from sqlalchemy import Connection, select, update

PREFIX = "mst_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(meta: MetadataStore, user: str) -> str:
    token = PREFIX + secrets.token_urlsafe(32)
    name = access.check_user_name(user)
    row = api_tokens.insert().values(token_hash=hash_token(token), user_name=user, created_at=access.now())

    def write(conn: Connection) -> None:
        access.user_id(conn, name, create=True)
        conn.execute(row)

    await meta.call(write, write=True)
    return token


async def revoke_tokens(meta: MetadataStore, *, user: str | None = None, token: str | None = None) -> int:
    cond = api_tokens.c.user_name == user if user is not None else api_tokens.c.token_hash == hash_token(token or "")
    revoke = update(api_tokens).where(cond, api_tokens.c.revoked_at.is_(None)).values(revoked_at=access.now())
    return await meta.call(lambda conn: int(conn.execute(revoke).rowcount or 0), write=True)


class StoredTokenVerifier:
    """Checks a bearer token against the hashes in the metadata store (revocation takes effect at once)."""

    def __init__(self, data_dir: Path, metadata_url: str | None = None) -> None:
        self._url = metadata_url or sqlite_url(data_dir / "metadata.db")
        self._meta: MetadataStore | None = None

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        if self._meta is None:
            self._meta = await MetadataStore.open(self._url)
        live = select(api_tokens.c.user_name).where(
            api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None)
        )
        row = await self._meta.call(lambda conn: conn.execute(live).first())
        if row is None:
            return None
        return AccessToken(token=token, client_id=row[0], scopes=[], subject=row[0])
