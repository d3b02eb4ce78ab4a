"""API tenants: their keys (shown once, stored as a hash), their webhook secrets (derived, never stored) and
their budgets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import update
from sqlmodel import Session, col, select

from shared.config import Settings
from shared.db.models import Tenant, utcnow
from shared.files import write_private

KEY_PREFIX = "rk_"
INFLIGHT_PREFIX = "recap:inflight:"  # Redis: a tenant's unfinished jobs (services/api/limits.py: InFlight)
INFLIGHT_TTL_S = 60  # a count the sweeper has not refreshed this long is counted again from the database


def inflight_key(tenant: str) -> str:
    return INFLIGHT_PREFIX + tenant


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def server_key(settings: Settings) -> bytes:
    """RECAP_SECRET_KEY, else the local stack's own key under var/ (made once, readable by its owner only)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = (settings.var_dir / "secret.key").resolve()
    if not path.exists():
        write_private(path, secrets.token_hex(32))
    return path.read_text().strip().encode()


def webhook_secret(settings: Settings, tenant: str, salt: str) -> str:
    """The tenant's signing secret: an HMAC of its name and salt under the server key, so the database alone
    (a backup, a replica) signs nothing."""
    mac = hmac.new(server_key(settings), f"webhook:{tenant}:{salt}".encode(), hashlib.sha256).hexdigest()
    return f"whsec_{mac}"


@dataclass(frozen=True)
class Issued:
    tenant: str
    api_key: str
    webhook_secret: str


class TenantError(ValueError):
    pass


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)  # 256 bits


def create(session: Session, settings: Settings, name: str, *, budget_usd: Decimal | None = None) -> Issued:
    existing = session.get(Tenant, name)
    if existing is not None:
        hint = (
            "`recap tenants rotate-key` restores its access" if existing.revoked_at else "choose another name"
        )
        raise TenantError(f"tenant {name!r} exists; {hint}")
    key = new_key()
    salt = secrets.token_hex(16)
    session.add(
        Tenant(
            name=name, key_hash=hash_key(key), key_prefix=key[:10], webhook_salt=salt, budget_usd=budget_usd
        )
    )
    session.flush()
    return Issued(name, key, webhook_secret(settings, name, salt))


def rotate_secret(session: Session, settings: Settings, name: str) -> str:
    """A new webhook secret for the tenant (the old one stops signing at once)."""
    salt = secrets.token_hex(16)
    stmt = update(Tenant).where(col(Tenant.name) == name).values(webhook_salt=salt)
    if session.connection().execute(stmt).rowcount != 1:
        raise TenantError(f"no tenant {name!r}")
    return webhook_secret(settings, name, salt)


def rotate_key(session: Session, settings: Settings, name: str) -> str:
    """A new API key for the tenant. A live tenant's old key keeps working for RECAP_API_KEY_GRACE_S so that its
    clients can move; a revoked tenant gets its access back with the new key only (the old one stays dead)."""
    tenant = session.get(Tenant, name, with_for_update=True)
    if tenant is None:
        raise TenantError(f"no tenant {name!r}")
    key = new_key()
    live = tenant.revoked_at is None
    tenant.previous_key_hash = tenant.key_hash if live else None
    tenant.previous_key_until = utcnow() + timedelta(seconds=settings.api_key_grace_s) if live else None
    tenant.key_hash, tenant.key_prefix, tenant.revoked_at = hash_key(key), key[:10], None
    session.add(tenant)
    session.flush()
    return key


def revoke(session: Session, name: str) -> bool:
    stmt = (
        update(Tenant)
        .where(col(Tenant.name) == name, col(Tenant.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(session.connection().execute(stmt).rowcount == 1)


def authenticate(session: Session, key: str) -> str | None:
    """The tenant a live key belongs to (its current key, or the one before inside its grace period), else None."""
    digest = hash_key(key)
    current = col(Tenant.key_hash) == digest
    previous = (col(Tenant.previous_key_hash) == digest) & (col(Tenant.previous_key_until) > utcnow())
    stmt = select(Tenant.name).where(current | previous, col(Tenant.revoked_at).is_(None))
    return session.exec(stmt).first()


@dataclass(frozen=True)
class TenantInfo:
    name: str
    key_prefix: str
    budget_usd: Decimal | None
    created_at: datetime
    revoked_at: datetime | None


def listing(session: Session) -> list[TenantInfo]:
    rows = session.exec(select(Tenant).order_by(col(Tenant.name))).all()
    return [TenantInfo(t.name, t.key_prefix, t.budget_usd, t.created_at, t.revoked_at) for t in rows]


def salt_of(session: Session, name: str) -> str | None:
    return session.exec(select(Tenant.webhook_salt).where(Tenant.name == name)).first()


def budget_of(session: Session, name: str) -> Decimal | None:
    """The tenant's own large-model budget, if `recap tenants create --budget` set one."""
    tenant = session.get(Tenant, name)
    return None if tenant is None or tenant.budget_usd is None else Decimal(tenant.budget_usd)
