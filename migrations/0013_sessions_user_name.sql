-- The session's user is `user_name`, as on PostgreSQL (where `user` is reserved), so
-- that both backends run the same statements (store::accounts).
ALTER TABLE sessions RENAME COLUMN user TO user_name;
