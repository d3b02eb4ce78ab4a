"""API tenants: their keys (shown once, stored as a hash), their webhook secrets (derived, never stored) and
their budgets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
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


def create(session: Session, settings: Settings, name: str, *, budget_usd: Decimal | None = None) -> Issued:
    if session.get(Tenant, name) is not None:
        raise TenantError(f"tenant {name!r} exists; `recap tenants revoke` it or choose another name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)  # 256 bits
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


def revoke(session: Session, name: str) -> bool:
    stmt = (
        update(Tenant)
        .where(col(Tenant.name) == name, col(Tenant.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(session.connection().execute(stmt).rowcount == 1)


def authenticate(session: Session, key: str) -> str | None:
    """The tenant a live key belongs to, else None."""
    stmt = select(Tenant.name).where(Tenant.key_hash == hash_key(key), col(Tenant.revoked_at).is_(None))
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
