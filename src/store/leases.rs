//! Leases for singleton jobs across processes on one store (migration 0012): a job runs
//! only where its lease is held. Times are epoch ms of the callers' wall clocks, which
//! must roughly agree (one host, or hosts kept in time).

use super::{PgStore, Result, SqliteStore};
use std::time::Duration;
use tokio::sync::watch;

/// A lease lasts this long after its last renewal: a holder killed without releasing it
/// is replaced within this time and one renewal interval.
pub const LEASE_TTL: Duration = Duration::from_secs(8);
/// How often a lease is renewed, or tried for by a process that does not hold it: four
/// renewals fit in a lease, so a holder whose store is briefly busy keeps it.
pub const LEASE_EVERY: Duration = Duration::from_secs(2);

/// This process among the others on the store: host, pid and a random part, made once
/// per process (every lease it holds is held under this one name).
pub fn lease_holder() -> String {
    static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOLDER
        .get_or_init(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "host".into());
            format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
        })
        .clone()
}

/// Starts a task that keeps trying to hold the lease `name` for `holder`, renewing it
/// every [`LEASE_EVERY`] while held and releasing it when `stop` says so; returns the
/// task and whether the lease is held, as it changes. A renewal that fails (the store
/// busy or unreachable) counts as lost: another process takes the lease at expiry.
pub fn keep_lease<S: Leases>(
    store: S,
    name: &str,
    holder: &str,
    mut stop: watch::Receiver<bool>,
) -> (tokio::task::JoinHandle<()>, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    let (name, holder) = (name.to_string(), holder.to_string());
    let task = tokio::spawn(async move {
        let ttl = LEASE_TTL.as_millis() as i64;
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            let held = match store.lease_hold(&name, &holder, now, ttl).await {
                Ok(term) => term.is_some(),
                Err(e) => {
                    tracing::warn!(lease = %name, error = %e, "Lease not renewed");
                    false
                }
            };
            if held != *tx.borrow() {
                tracing::info!(lease = %name, held, holder = %holder, "Lease changed hands");
            }
            tx.send_replace(held);
            tokio::select! {
                _ = tokio::time::sleep(LEASE_EVERY) => {}
                _ = stop.wait_for(|v| *v) => break,
            }
        }
        if tx.send_replace(false) {
            let _ = store.lease_release(&name, &holder).await;
        }
    });
    (task, rx)
}

/// Runs `job` while the lease is held (`held`): started when it is taken, stopped (its
/// stop receiver set, then awaited) when it is lost or `stop` says so, started again
/// when it is taken back. `on_standby` is called whenever the job waits for the lease.
pub async fn while_held<F, Fut>(
    mut held: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    on_standby: impl Fn(),
    job: F,
) where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        if !*held.borrow() {
            on_standby();
        }
        let taken = tokio::select! {
            r = held.wait_for(|h| *h) => r.is_ok(),
            _ = stop.wait_for(|v| *v) => false,
        };
        if !taken {
            return;
        }
        let (job_stop, job_stop_rx) = watch::channel(false);
        let run = job(job_stop_rx);
        tokio::pin!(run);
        // 0: the job ended on its own (it failed); 1: the lease was lost; 2: stop.
        let why = tokio::select! {
            _ = &mut run => 0,
            _ = held.wait_for(|h| !*h) => 1,
            _ = stop.wait_for(|v| *v) => 2,
        };
        if why == 0 {
            // Not at once again.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let _ = job_stop.send(true);
        run.await;
        if why == 2 {
            return;
        }
    }
}

/// Who holds a lease, until when, and its term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub expires_at: i64,
    pub term: i64,
}

/// Takes or renews a lease: the same statement on both backends (`$n` parameters).
/// Succeeds when nobody holds it, `holder` does, or the holder's time ran out (before
/// `now`); the term grows when the lease changes hands.
const HOLD: &str =
    "INSERT INTO leases (name, holder, expires_at, term) VALUES ($1, $2, $3 + $4, 1) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
     expires_at = excluded.expires_at, \
     term = CASE WHEN leases.holder = excluded.holder THEN leases.term \
            ELSE leases.term + 1 END \
     WHERE leases.holder = excluded.holder OR leases.expires_at < $3 \
     RETURNING term";

/// Gives a lease up at once, if `holder` holds it.
const RELEASE: &str = "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2";

/// A store that keeps leases: SQLite ([`SqliteStore`]) or PostgreSQL ([`PgStore`]).
pub trait Leases: Clone + Send + Sync + 'static {
    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`; returns the
    /// term held, `None` when another process holds it.
    fn lease_hold(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> impl std::future::Future<Output = Result<Option<i64>>> + Send;

    /// Gives the lease up at once (a clean shutdown), if `holder` holds it.
    fn lease_release(
        &self,
        name: &str,
        holder: &str,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

/// [`Leases`] for a store type, through its (writer) `pool()`, and its `leases()`
/// through its `read_pool()`.
macro_rules! leases_on {
    ($store:ty) => {
        impl Leases for $store {
            async fn lease_hold(
                &self,
                name: &str,
                holder: &str,
                now: i64,
                ttl_ms: i64,
            ) -> Result<Option<i64>> {
                Ok(sqlx::query_scalar(HOLD)
                    .bind(name)
                    .bind(holder)
                    .bind(now)
                    .bind(ttl_ms)
                    .fetch_optional(self.pool())
                    .await?)
            }

            async fn lease_release(&self, name: &str, holder: &str) -> Result<()> {
                sqlx::query(RELEASE)
                    .bind(name)
                    .bind(holder)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }
        }

        impl $store {
            /// Every lease, by name.
            pub async fn leases(&self) -> Result<Vec<LeaseRow>> {
                let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
                    "SELECT name, holder, expires_at, term FROM leases ORDER BY name",
                )
                .fetch_all(self.read_pool())
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
    };
}

leases_on!(SqliteStore);
leases_on!(PgStore);
