//! Leases for singleton jobs across processes on one store (migration 0012): a job runs
//! only where its lease is held. Times are epoch ms of the callers' wall clocks, which
//! must roughly agree (one host, or hosts kept in time).

use super::{Result, SqliteStore};

/// Who holds a lease, until when, and its term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub expires_at: i64,
    pub term: i64,
}

impl SqliteStore {
    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`: succeeds when
    /// nobody holds it, `holder` does, or the holder's time ran out (before `now`).
    /// Returns the term held, `None` when another process holds it.
    pub async fn lease_hold(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        let term: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at, term) VALUES (?1, ?2, ?3 + ?4, 1) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at, \
             term = CASE WHEN leases.holder = excluded.holder THEN leases.term \
                    ELSE leases.term + 1 END \
             WHERE leases.holder = excluded.holder OR leases.expires_at < ?3 \
             RETURNING term",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(ttl_ms)
        .fetch_optional(&self.writer)
        .await?;
        Ok(term)
    }

    /// Gives the lease up at once (a clean shutdown), if `holder` holds it.
    pub async fn lease_release(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Every lease, by name.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>> {
        let rows: Vec<(String, String, i64, i64)> =
            sqlx::query_as("SELECT name, holder, expires_at, term FROM leases ORDER BY name")
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, holder, expires_at, term)| LeaseRow {
                name,
                holder,
                expires_at,
                term,
            })
            .collect())
    }
}
