//! The pages' accounts on PostgreSQL: `store::accounts` with `$n` parameters (and the
//! session's user in `user_name`, `user` being reserved).

use super::PgStore;
use crate::store::{Result, SessionRow, User};
use sqlx::Row;

impl PgStore {
    /// Adds a user; false when the name is taken.
    pub async fn add_user(&self, name: &str, role: &str, hash: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role)
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a user's password hash and ends their sessions; false when no such user.
    pub async fn set_password(&self, name: &str, hash: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
            .bind(hash)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a user and their sessions; false when no such user.
    pub async fn remove_user(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT name, role, created_at FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(User {
                    name: r.try_get(0)?,
                    role: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// A user's role and password hash.
    pub async fn user_credentials(&self, name: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT role, password_hash FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Stores a new session (and drops expired ones).
    pub async fn create_session(
        &self,
        token_sha256: &str,
        user: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_sha256, user_name, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_sha256)
        .bind(user)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live session of a token hash, with its user's current role.
    pub async fn session(&self, token_sha256: &str, now: i64) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT s.user_name, u.role, s.csrf, s.expires_at FROM sessions s \
             JOIN users u ON u.name = s.user_name WHERE s.token_sha256 = $1 AND s.expires_at > $2",
        )
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                user: r.try_get(0)?,
                role: r.try_get(1)?,
                csrf: r.try_get(2)?,
                expires_at: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_sha256: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
            .bind(token_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
