//! Opening the database: which URLs are accepted, the settings every connection gets, and
//! the embedded migrations.

use std::path::Path;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::{DATABASE_FILE, Result, StoreError};

/// The SQLite schema. PostgreSQL will get its own folder (`migrations/postgres`): the
/// dialects differ in DDL, while the queries stay shared.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

pub(crate) async fn open(database_url: &str) -> Result<AnyPool> {
    let url = sqlite_url(database_url)?;
    // Registers the compiled-in drivers with `Any`; guarded by its own `Once`.
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        // A SQLite connection is a file handle in this process, not a socket that can go
        // stale: pinging its worker thread before each use only adds a round trip (sqlx
        // still pings on release).
        .test_before_acquire(false)
        .after_connect(|connection, _metadata| Box::pin(configure(connection)))
        .connect(&url)
        .await?;
    SQLITE_MIGRATIONS.run(&pool).await?;
    Ok(pool)
}

pub(crate) async fn open_data_dir(dir: &Path) -> Result<AnyPool> {
    let data_dir_error = |source| StoreError::DataDir { path: dir.display().to_string(), source };
    // Blocking, but once at start-up, before the server takes requests.
    std::fs::create_dir_all(dir).map_err(data_dir_error)?;
    if dir.join(DATABASE_FILE).to_str().is_none() {
        return Err(data_dir_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path is not valid UTF-8",
        )));
    }
    open(&database_url_in(dir)).await
}

/// The URL of the database file in a data directory, its path percent-encoded.
pub fn database_url_in(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", percent_encode_path(&dir.join(DATABASE_FILE).to_string_lossy()))
}

/// Checks the scheme and asks SQLite to create a missing file unless the URL chose a mode.
fn sqlite_url(database_url: &str) -> Result<String> {
    let unsupported = || StoreError::UnsupportedUrl(database_url.to_owned());
    // sqlx reads `sqlite:PATH` and `sqlite://PATH` alike.
    let rest = database_url.strip_prefix("sqlite:").ok_or_else(unsupported)?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').map_or((rest, None), |(path, query)| (path, Some(query)));
    if path.is_empty() {
        return Err(unsupported());
    }
    Ok(match query {
        Some(query) if query.split('&').any(|pair| pair.starts_with("mode=")) => database_url.to_owned(),
        Some(_) => format!("{database_url}&mode=rwc"),
        None => format!("{database_url}?mode=rwc"),
    })
}

/// sqlx percent-decodes the path of a SQLite URL, so `%`, `?`, `#` and spaces in a
/// directory name must be encoded to reach the file system unchanged.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Settings that SQLite keeps per connection (busy timeout, foreign keys) are set on
/// each; WAL is a property of the file, so it is switched on once and then found set.
async fn configure(connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
    // Waits for a concurrent writer instead of failing with SQLITE_BUSY at once.
    connection.execute("PRAGMA busy_timeout = 5000").await?;
    connection.execute("PRAGMA foreign_keys = ON").await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *connection).await?;
    if !mode.eq_ignore_ascii_case("wal") {
        connection.execute("PRAGMA journal_mode = WAL").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode_unless_they_chose_one() {
        assert_eq!(sqlite_url("sqlite:///tmp/a.db").ok(), Some("sqlite:///tmp/a.db?mode=rwc".to_owned()));
        assert_eq!(
            sqlite_url("sqlite://a.db?cache=shared").ok(),
            Some("sqlite://a.db?cache=shared&mode=rwc".to_owned())
        );
        assert_eq!(sqlite_url("sqlite://a.db?mode=ro").ok(), Some("sqlite://a.db?mode=ro".to_owned()));
        assert!(matches!(sqlite_url("sqlite://"), Err(StoreError::UnsupportedUrl(_))));
        assert!(matches!(sqlite_url("postgres://localhost/mtgs"), Err(StoreError::UnsupportedUrl(_))));
    }

    #[test]
    fn paths_are_percent_encoded_for_the_url() {
        assert_eq!(percent_encode_path("/tmp/my dir/100%?#/mtgs.db"), "/tmp/my%20dir/100%25%3F%23/mtgs.db");
    }
}
