//! Environments: created on first use, each with a generation counter that tells an
//! in-memory detection index whether it is still current.

use mtgs_core::EnvironmentName;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::{int, name_column};
use crate::{EnvironmentRow, Result};

/// `sqlx::query` takes `&'static str`: the column list is shared through `concat!`.
macro_rules! select_environment {
    ($tail:literal) => {
        concat!("SELECT id, name, generation, revision, created_at FROM environments ", $tail)
    };
}

fn environment_from_row(row: &AnyRow) -> Result<EnvironmentRow> {
    Ok(EnvironmentRow {
        id: int(row, "id")?,
        name: name_column(row, "name", "environments", EnvironmentName::parse)?,
        generation: int(row, "generation")?,
        revision: int(row, "revision")?,
        created_at: int(row, "created_at")?,
    })
}

pub(crate) async fn by_name(conn: &mut AnyConnection, name: &EnvironmentName) -> Result<Option<EnvironmentRow>> {
    sqlx::query(select_environment!("WHERE name = $1"))
        .bind(name.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(environment_from_row)
        .transpose()
}

pub(crate) async fn all(conn: &mut AnyConnection) -> Result<Vec<EnvironmentRow>> {
    sqlx::query(select_environment!("ORDER BY name"))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(environment_from_row)
        .collect()
}

pub(crate) async fn ensure(conn: &mut AnyConnection, name: &EnvironmentName, now: i64) -> Result<EnvironmentRow> {
    sqlx::query(
        "INSERT INTO environments (name, generation, created_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    by_name(conn, name).await?.ok_or(sqlx::Error::RowNotFound.into())
}

/// Moves on the revision of the environment `owner` names: the environment itself, or
/// the one a tool or a conflict belongs to.
pub(crate) async fn bump_revision(conn: &mut AnyConnection, owner: Owner) -> Result<()> {
    let sql = match owner {
        Owner::Environment(_) => "UPDATE environments SET revision = revision + 1 WHERE id = $1",
        Owner::Tool(_) => {
            "UPDATE environments SET revision = revision + 1 WHERE id = (SELECT environment_id FROM tools WHERE id = $1)"
        }
        Owner::Conflict(_) => {
            "UPDATE environments SET revision = revision + 1 \
             WHERE id = (SELECT environment_id FROM conflicts WHERE id = $1)"
        }
    };
    let (Owner::Environment(id) | Owner::Tool(id) | Owner::Conflict(id)) = owner;
    sqlx::query(sql).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// What a revision bump names: the environment, or a row of it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner {
    Environment(i64),
    Tool(i64),
    Conflict(i64),
}

/// Fails with `RowNotFound` when there is no such environment.
pub(crate) async fn bump_generation(conn: &mut AnyConnection, environment_id: i64) -> Result<i64> {
    let generation: Option<i64> =
        sqlx::query_scalar("UPDATE environments SET generation = generation + 1 WHERE id = $1 RETURNING generation")
            .bind(environment_id)
            .fetch_optional(&mut *conn)
            .await?;
    generation.ok_or(sqlx::Error::RowNotFound.into())
}
