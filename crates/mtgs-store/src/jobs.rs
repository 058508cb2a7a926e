//! The job queue: a table on the same database. A worker claims a job with a lease and
//! extends it as it makes progress; a job whose lease ran out (its worker died) is
//! claimed again.

use mtgs_core::{EnvironmentName, Job, JobKind, JobStatus};
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::{enum_column, int, name_column, optional_int, optional_text, parse_json};
use crate::{Result, environments};

/// `sqlx::query` takes `&'static str`: the column list is shared through `concat!`.
macro_rules! select_job {
    ($tail:literal) => {
        concat!(
            "SELECT j.id, j.kind, e.name AS environment, j.status, j.payload, j.progress_done, j.progress_total, j.result, \
             j.error, j.attempts, j.created_at, j.started_at, j.finished_at \
             FROM jobs j JOIN environments e ON e.id = j.environment_id ",
            $tail
        )
    };
}

fn job_from_row(row: &AnyRow) -> Result<Job> {
    let json = |column: &str| -> Result<Value> {
        match optional_text(row, column)? {
            Some(raw) => parse_json(&raw, column, "jobs"),
            None => Ok(Value::Null),
        }
    };
    let (payload, result) = (json("payload")?, json("result")?);
    Ok(Job {
        id: int(row, "id")?,
        kind: enum_column(row, "kind", "jobs")?,
        environment: name_column(row, "environment", "jobs", EnvironmentName::parse)?,
        status: enum_column(row, "status", "jobs")?,
        progress_done: int(row, "progress_done")?,
        progress_total: int(row, "progress_total")?,
        payload,
        result,
        error: optional_text(row, "error")?,
        attempts: int(row, "attempts")?,
        created_at: int(row, "created_at")?,
        started_at: optional_int(row, "started_at")?,
        finished_at: optional_int(row, "finished_at")?,
    })
}

pub(crate) async fn by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<Job>> {
    sqlx::query(select_job!("WHERE j.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(job_from_row)
        .transpose()
}

async fn existing(conn: &mut AnyConnection, id: i64) -> Result<Job> {
    by_id(conn, id).await?.ok_or(sqlx::Error::RowNotFound.into())
}

/// Call inside a transaction: the environment and the job land together.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    kind: JobKind,
    environment: &EnvironmentName,
    payload: Option<&Value>,
    now: i64,
) -> Result<Job> {
    let environment = environments::ensure(conn, environment, now).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (kind, environment_id, status, payload, progress_done, progress_total, attempts, created_at) \
         VALUES ($1, $2, $3, $4, 0, 0, 0, $5) RETURNING id",
    )
    .bind(kind.as_str())
    .bind(environment.id)
    .bind(JobStatus::Queued.as_str())
    .bind(payload.map(Value::to_string))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    existing(conn, id).await
}

/// Call inside a transaction. One statement picks and takes the job, so two workers
/// cannot both claim it: SQLite runs one writer at a time, and the PostgreSQL version of
/// the inner `SELECT` adds `FOR UPDATE SKIP LOCKED`.
pub(crate) async fn claim(conn: &mut AnyConnection, now: i64, lease_ms: i64) -> Result<Option<Job>> {
    let claimed: Option<i64> = sqlx::query_scalar(
        "UPDATE jobs SET status = $1, attempts = attempts + 1, started_at = COALESCE(started_at, $3), \
           lease_until = $3 + $4 \
         WHERE id = (SELECT id FROM jobs \
                     WHERE status = $2 OR (status = $1 AND lease_until < $3) \
                     ORDER BY created_at, id LIMIT 1) \
         RETURNING id",
    )
    .bind(JobStatus::Running.as_str())
    .bind(JobStatus::Queued.as_str())
    .bind(now)
    .bind(lease_ms)
    .fetch_optional(&mut *conn)
    .await?;
    match claimed {
        Some(id) => existing(conn, id).await.map(Some),
        None => Ok(None),
    }
}

/// Fails with `RowNotFound` when there is no such job.
pub(crate) async fn update_progress(
    conn: &mut AnyConnection,
    id: i64,
    done: i64,
    total: i64,
    now: i64,
    lease_ms: i64,
) -> Result<()> {
    let updated =
        sqlx::query("UPDATE jobs SET progress_done = $1, progress_total = $2, lease_until = $3 + $4 WHERE id = $5")
            .bind(done)
            .bind(total)
            .bind(now)
            .bind(lease_ms)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    if updated.rows_affected() == 0 {
        return Err(sqlx::Error::RowNotFound.into());
    }
    Ok(())
}

/// Fails with `RowNotFound` when there is no such job.
pub(crate) async fn finish(
    conn: &mut AnyConnection,
    id: i64,
    outcome: std::result::Result<Value, String>,
    now: i64,
) -> Result<Job> {
    let (status, result, error) = match outcome {
        Ok(result) => (JobStatus::Succeeded, Some(result.to_string()), None),
        Err(message) => (JobStatus::Failed, None, Some(message)),
    };
    let updated = sqlx::query(
        "UPDATE jobs SET status = $1, result = $2, error = $3, finished_at = $4, lease_until = NULL WHERE id = $5",
    )
    .bind(status.as_str())
    .bind(result)
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(sqlx::Error::RowNotFound.into());
    }
    existing(conn, id).await
}
