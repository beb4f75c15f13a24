//! PostgreSQL: a notification on channel `tessera_cache` whenever a user
//! row, an opaque key or a refresh-token family changes or goes, sent at
//! commit, so every instance drops what it kept in memory of it before its
//! next request.
//! SQLite needs none: each instance watches the file's data version.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One function for every table: the payload's prefix and the column it
/// names come as trigger arguments; a truncation empties everything.
const UP: &str = r#"
CREATE OR REPLACE FUNCTION tessera_cache_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('tessera_cache', 'all');
    ELSE
        PERFORM pg_notify('tessera_cache', TG_ARGV[0] || (to_jsonb(OLD) ->> TG_ARGV[1]));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER users_cache AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION tessera_cache_changed('user:', 'id');
CREATE TRIGGER users_cache_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_cache_changed();
CREATE TRIGGER auth_tokens_cache AFTER UPDATE OR DELETE ON auth_tokens
    FOR EACH ROW EXECUTE FUNCTION tessera_cache_changed('keys:', 'user_id');
CREATE TRIGGER auth_tokens_cache_truncate AFTER TRUNCATE ON auth_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_cache_changed();
CREATE TRIGGER token_families_cache AFTER UPDATE OR DELETE ON token_families
    FOR EACH ROW EXECUTE FUNCTION tessera_cache_changed('family:', 'id');
CREATE TRIGGER token_families_cache_truncate AFTER TRUNCATE ON token_families
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_cache_changed();
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS users_cache ON users;
DROP TRIGGER IF EXISTS users_cache_truncate ON users;
DROP TRIGGER IF EXISTS auth_tokens_cache ON auth_tokens;
DROP TRIGGER IF EXISTS auth_tokens_cache_truncate ON auth_tokens;
DROP TRIGGER IF EXISTS token_families_cache ON token_families;
DROP TRIGGER IF EXISTS token_families_cache_truncate ON token_families;
DROP FUNCTION IF EXISTS tessera_cache_changed();
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(manager, DOWN).await
    }
}
