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
        concat!("SELECT id, name, generation, created_at FROM environments ", $tail)
    };
}

fn environment_from_row(row: &AnyRow) -> Result<EnvironmentRow> {
    Ok(EnvironmentRow {
        id: int(row, "id")?,
        name: name_column(row, "name", "environments", EnvironmentName::parse)?,
        generation: int(row, "generation")?,
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

/// Fails with `RowNotFound` when there is no such environment.
pub(crate) async fn bump_generation(conn: &mut AnyConnection, environment_id: i64) -> Result<i64> {
    let generation: Option<i64> =
        sqlx::query_scalar("UPDATE environments SET generation = generation + 1 WHERE id = $1 RETURNING generation")
            .bind(environment_id)
            .fetch_optional(&mut *conn)
            .await?;
    generation.ok_or(sqlx::Error::RowNotFound.into())
}
