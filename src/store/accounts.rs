//! Built-in accounts and sessions (migrations 0009, 0013; on PostgreSQL 0003): users
//! with an argon2id password hash and a role, and login sessions stored by the SHA-256
//! of their token. Hashing and token generation happen in the web layer; this is
//! storage only, the same statements on both backends.

use super::{PgStore, Result, SqliteStore};
use sqlx::Row;

/// One account, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// `viewer` or `responder`.
    pub role: String,
    pub created_at: i64,
}

/// A live session: whose it is, the user's current role, and its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub expires_at: i64,
}

/// The accounts of a store type, through its `read_pool()`, `write_pool()` and
/// `begin_write()`.
macro_rules! accounts_on {
    ($store:ty) => {
        impl $store {
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
        .execute(self.write_pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a user's password hash and ends their sessions; false when no such user.
    pub async fn set_password(&self, name: &str, hash: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
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
        let mut tx = self.begin_write().await?;
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
            .fetch_all(self.read_pool())
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
            .fetch_optional(self.read_pool())
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
        let mut tx = self.begin_write().await?;
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
        .fetch_optional(self.read_pool())
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
            .execute(self.write_pool())
            .await?;
        Ok(())
    }
        }
    };
}

accounts_on!(SqliteStore);
accounts_on!(PgStore);
