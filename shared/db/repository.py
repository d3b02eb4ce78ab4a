"""Every read and write of job state. Keyword-only functions over a caller's session; they never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, select

from shared.costs import Price, stage_cost
from shared.db.models import TERMINAL, GateDecision, Job, JobStatus, StageRun, Summary, Transcript, utcnow
from shared.errors import JobError
from shared.schemas import ErrorInfo, GateView, JobView, StageView, SummaryView, Usage


def insert_statement(session: Session, model: type[SQLModel], values: dict[str, Any]) -> Any:
    """An INSERT that knows ON CONFLICT, for Postgres and SQLite alike."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model.__table__).values(**values)  # type: ignore[attr-defined]


def _upsert(session: Session, model: type[SQLModel], keys: Sequence[str], values: dict[str, Any]) -> None:
    updates = {k: v for k, v in values.items() if k not in keys}
    session.execute(
        insert_statement(session, model, values).on_conflict_do_update(
            index_elements=list(keys), set_=updates
        )
    )


def create_job(
    session: Session,
    *,
    raw: bytes,
    tenant: str,
    source_name: str | None,
    summary_length: str = "medium",
    requested_format: str | None = None,
) -> Job:
    job = Job(
        tenant=tenant,
        source_name=source_name,
        summary_length=summary_length,
        requested_format=requested_format,
    )
    session.add(job)
    session.flush()
    session.add(Transcript(job_id=job.id, raw=raw))
    return job


def get_job(session: Session, *, job_id: uuid.UUID, lock: bool = False) -> Job | None:
    return session.get(Job, job_id, with_for_update=lock)


def get_transcript(session: Session, *, job_id: uuid.UUID) -> Transcript:
    transcript = session.get(Transcript, job_id)
    if transcript is None:
        raise JobError("transcript_missing", f"job {job_id} has no stored transcript")
    return transcript


def move_status(
    session: Session, *, job_id: uuid.UUID, expect: JobStatus, to: JobStatus, **fields: Any
) -> bool:
    """Compare-and-set the status; False when another delivery moved the job first (so never backwards)."""
    if to in TERMINAL:
        fields.setdefault("finished_at", utcnow())
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status == expect)  # type: ignore[arg-type]
        .values(status=to, updated_at=utcnow(), **fields)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]


def end_with_error(session: Session, *, job_id: uuid.UUID, error: JobError) -> bool:
    """Ends a job that has not ended yet as rejected/failed with the error's code and message."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.not_in([str(s) for s in TERMINAL]))  # type: ignore[attr-defined]
        .values(
            status=error.status,
            error_code=error.code,
            error_message=error.message,
            updated_at=utcnow(),
            finished_at=utcnow(),
        )
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]


def count_delivery(session: Session, *, job_id: uuid.UUID, stage: str, attempt: int = 1) -> int:
    """Opens (or reopens, on redelivery) the stage's ledger row; returns how often the stage was delivered."""
    stmt = insert_statement(
        session,
        StageRun,
        {"job_id": job_id, "stage": stage, "attempt": attempt, "deliveries": 1, "started_at": utcnow()},
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["job_id", "stage", "attempt"],
            set_={"deliveries": StageRun.__table__.c.deliveries + 1, "started_at": utcnow()},  # type: ignore[attr-defined]
        )
    )
    run = session.exec(
        select(StageRun).where(
            StageRun.job_id == job_id, StageRun.stage == stage, StageRun.attempt == attempt
        )
    ).one()
    session.refresh(run)
    return run.deliveries


def record_usage(
    session: Session,
    *,
    job_id: uuid.UUID,
    stage: str,
    usage: Usage,
    price: Price,
    price_version: str,
    attempt: int = 1,
) -> Decimal:
    """Closes the stage's ledger row with its usage and cost; returns the cost in USD."""
    cost = stage_cost(
        price, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, seconds=usage.seconds
    )
    stmt = (
        update(StageRun)
        .where(StageRun.job_id == job_id, StageRun.stage == stage, StageRun.attempt == attempt)  # type: ignore[arg-type]
        .values(
            model=usage.model,
            device=usage.device,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            seconds=usage.seconds,
            batch_size=usage.batch_size,
            price_input_per_mtok=price.input_per_mtok,
            price_output_per_mtok=price.output_per_mtok,
            price_per_second=price.per_second,
            price_version=price_version,
            cost_usd=cost,
            finished_at=utcnow(),
        )
    )
    if session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
        raise JobError("ledger_row_missing", f"no open {stage} ledger row for job {job_id}")
    return cost


def save_turns(
    session: Session, *, job_id: uuid.UUID, source_format: str, turns: list[dict[str, Any]]
) -> None:
    transcript = get_transcript(session, job_id=job_id)
    transcript.turns = turns
    transcript.n_turns = len(turns)
    transcript.n_words = sum(len(t["text"].split()) for t in turns)
    session.add(transcript)
    session.execute(update(Job).where(Job.id == job_id).values(source_format=source_format))  # type: ignore[arg-type]


def save_summary(
    session: Session,
    *,
    job_id: uuid.UUID,
    tier: str,
    model: str,
    text: str,
    scores: dict[str, float] | None,
    **made: Any,
) -> None:
    """Upserts a tier's summary; `made` holds how it was made (chunks, levels, calls, truncation_ratio)."""
    _upsert(
        session,
        Summary,
        ("job_id", "tier"),
        {
            "job_id": job_id,
            "tier": tier,
            "model": model,
            "text": text,
            "scores": scores,
            "created_at": utcnow(),
            **made,
        },
    )


def get_summary(session: Session, *, job_id: uuid.UUID, tier: str) -> Summary | None:
    return session.exec(select(Summary).where(Summary.job_id == job_id, Summary.tier == tier)).first()


def save_decision(session: Session, *, decision: GateDecision) -> None:
    _upsert(session, GateDecision, ("job_id",), decision.model_dump())


def count_unfinished(session: Session, *, job_ids: Sequence[uuid.UUID]) -> int:
    stmt = select(func.count()).where(
        Job.id.in_(list(job_ids)),  # type: ignore[attr-defined]
        Job.status.not_in([str(s) for s in TERMINAL]),  # type: ignore[attr-defined]
    )
    return session.exec(stmt).one()


def job_cost(session: Session, *, job_id: uuid.UUID) -> Decimal:
    total = session.exec(select(func.sum(StageRun.cost_usd)).where(StageRun.job_id == job_id)).one()
    return Decimal(total or 0)


def job_view(session: Session, *, job_id: uuid.UUID) -> JobView | None:
    """The job as users see it: status, summary, tier, cost, error, gate decision and per-stage ledger."""
    job = session.get(Job, job_id)
    if job is None:
        return None
    runs = session.exec(select(StageRun).where(StageRun.job_id == job_id).order_by(StageRun.id)).all()  # type: ignore[arg-type]
    decision = session.get(GateDecision, job_id)
    summaries = {s.tier: s for s in session.exec(select(Summary).where(Summary.job_id == job_id)).all()}
    shown = summaries.get(job.tier or "small") or summaries.get("small")
    return JobView(
        job_id=str(job.id),
        tenant=job.tenant,
        status=job.status,
        tier=job.tier,
        summary=job.summary,
        source=job.source_name,
        source_format=job.source_format,
        summary_length=job.summary_length,
        chunks=shown.chunks if shown else None,
        truncation_ratio=shown.truncation_ratio if shown else None,
        cost_usd=float(sum((r.cost_usd for r in runs), Decimal(0))),
        error=ErrorInfo(code=job.error_code, message=job.error_message or "") if job.error_code else None,
        created_at=job.created_at,
        finished_at=job.finished_at,
        gate=GateView(
            score_name=decision.score_name,
            score=decision.score,
            threshold=decision.threshold,
            decision=decision.decision,
            policy=decision.policy,
            target_rate=decision.target_rate,
            reason=decision.reason,
        )
        if decision
        else None,
        summaries=[
            SummaryView(
                tier=s.tier,
                model=s.model,
                chunks=s.chunks,
                levels=s.levels,
                calls=s.calls,
                truncation_ratio=s.truncation_ratio,
            )
            for s in sorted(summaries.values(), key=lambda s: s.tier != "small")
        ],
        stages=[
            StageView(
                stage=r.stage,
                model=r.model,
                device=r.device,
                input_tokens=r.input_tokens,
                output_tokens=r.output_tokens,
                seconds=r.seconds,
                batch_size=r.batch_size,
                deliveries=r.deliveries,
                cost_usd=float(r.cost_usd),
            )
            for r in runs
        ],
    )
