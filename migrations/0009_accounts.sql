-- Built-in accounts and their sessions (issue 19). Access control state, not history:
-- rows are added, changed and removed by `rootline user ...` and by logins and logouts.
-- The event log stays append-only; a verdict records who gave it in its own event.
--
-- Passwords are stored only as argon2id hashes (PHC strings). Sessions are stored only
-- as the SHA-256 of their token: the cookie value never reaches the database.
CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'responder')),
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sessions (
    token_sha256 TEXT    PRIMARY KEY,
    user         TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    -- The CSRF token of the session, rendered into its forms.
    csrf         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX sessions_by_user ON sessions (user);
