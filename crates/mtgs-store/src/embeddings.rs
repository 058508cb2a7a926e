//! Stage 3's vector cache, keyed by the embedder's identity and the fingerprint's hash.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::rows::{CHUNK, Sql, int, text};
use crate::{Result, StoreError};

/// Little-endian bytes of `vector`.
fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|value| value.to_le_bytes()).collect()
}

fn decode(bytes: &[u8], dimensions: i64) -> Result<Vec<f32>> {
    let corrupt = |reason: String| StoreError::Corrupt { table: "embeddings", reason };
    if usize::try_from(dimensions).ok().and_then(|dims| dims.checked_mul(4)) != Some(bytes.len()) {
        return Err(corrupt(format!("{} bytes for {dimensions} dimensions", bytes.len())));
    }
    let vector: Vec<f32> =
        bytes.chunks_exact(4).map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).collect();
    if vector.iter().any(|value| !value.is_finite()) {
        return Err(corrupt("a vector holds a non-finite value".into()));
    }
    Ok(vector)
}

/// The cached vectors of `model_id` for those of `fingerprints` that have one.
pub(crate) async fn get(
    conn: &mut AnyConnection,
    model_id: &str,
    fingerprints: &[&str],
) -> Result<HashMap<String, Vec<f32>>> {
    let mut found = HashMap::with_capacity(fingerprints.len());
    for chunk in fingerprints.chunks(CHUNK) {
        let mut sql = Sql::new("SELECT fingerprint, dimensions, vector FROM embeddings WHERE model_id = ");
        sql.bind(model_id).push(" AND fingerprint IN (").bind_list(chunk.iter().copied()).push(")");
        for row in sql.build().fetch_all(&mut *conn).await? {
            let bytes: Vec<u8> = row.try_get("vector")?;
            found.insert(text(&row, "fingerprint")?, decode(&bytes, int(&row, "dimensions")?)?);
        }
    }
    Ok(found)
}

/// Stores vectors of `model_id`; a fingerprint already cached keeps its first vector.
pub(crate) async fn put(
    conn: &mut AnyConnection,
    model_id: &str,
    vectors: &[(String, Vec<f32>)],
    now: i64,
) -> Result<()> {
    // Five values per row.
    for chunk in vectors.chunks(CHUNK / 5) {
        let mut sql =
            Sql::new("INSERT INTO embeddings (model_id, fingerprint, dimensions, vector, created_at) VALUES ");
        for (index, (fingerprint, vector)) in chunk.iter().enumerate() {
            if index > 0 {
                sql.push(", ");
            }
            let dimensions = i64::try_from(vector.len()).unwrap_or(i64::MAX);
            sql.push("(")
                .bind(model_id)
                .push(", ")
                .bind(fingerprint.as_str())
                .push(", ")
                .bind(dimensions)
                .push(", ")
                .bind(encode(vector))
                .push(", ")
                .bind(now)
                .push(")");
        }
        sql.push(" ON CONFLICT (model_id, fingerprint) DO NOTHING");
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// How many vectors each model has cached, by model.
pub(crate) async fn counts(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>> {
    sqlx::query("SELECT model_id, COUNT(*) AS n FROM embeddings GROUP BY model_id ORDER BY model_id")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| Ok((text(row, "model_id")?, int(row, "n")?)))
        .collect()
}
