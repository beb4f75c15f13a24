//! PostgreSQL: a notification on channel `tessera_cache` when a token is
//! blacklisted (`blacklist:<jti>`), sent at commit, so every instance may
//! remember which tokens are *not* on the blacklist: a sliding token, or a
//! refresh token that is not its family's current one, is then checked
//! without a query. Rows only ever come off the blacklist (the purge of
//! expired ones), which no kept answer is hurt by, so deletions send nothing.
//! SQLite needs none: each instance watches the file's data version.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE OR REPLACE FUNCTION tessera_blacklist_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_cache', 'blacklist:' || NEW.jti);
    RETURN NULL;
END $$;
CREATE TRIGGER token_blacklist_cache AFTER INSERT OR UPDATE ON token_blacklist
    FOR EACH ROW EXECUTE FUNCTION tessera_blacklist_added();
CREATE TRIGGER token_blacklist_cache_truncate AFTER TRUNCATE ON token_blacklist
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_cache_changed();
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS token_blacklist_cache ON token_blacklist;
DROP TRIGGER IF EXISTS token_blacklist_cache_truncate ON token_blacklist;
DROP FUNCTION IF EXISTS tessera_blacklist_added();
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
