//! PostgreSQL: the cache's notifications go on a channel of the schema the
//! tables are in: `tessera_cache` in `public` (as before), else
//! `tessera_cache_` and 32 hex digits of the schema name's SHA-256 (a
//! channel name has at most 63 bytes). Notifications reach every session
//! of the database, so two deployments in different schemas of one
//! database shared one channel: each dropped entries on the other's
//! changes and waited for the other's acknowledgements, and for seconds
//! whenever an instance of the other stopped without saying so.
//! The server computes the same name (`cache::channel_for`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The channel of the schema a trigger's table is in. `TG_TABLE_SCHEMA`,
/// not `current_schema()`: a tool whose search_path differs still notifies
/// the deployment whose table it wrote.
const PER_SCHEMA: &str = "CASE TG_TABLE_SCHEMA WHEN 'public' THEN 'tessera_cache' \
    ELSE 'tessera_cache_' || left(encode(sha256(convert_to(TG_TABLE_SCHEMA, 'UTF8')), 'hex'), 32) END";

/// The one channel of 000008 and 000009.
const SHARED: &str = "'tessera_cache'";

/// The two trigger functions of 000008 and 000009, sending on `channel`
/// (an SQL expression). The migrations before stay as they were written;
/// this one's down step gives back what they made.
fn functions(channel: &str) -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION tessera_cache_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    channel text := {channel};
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify(channel, 'all');
    ELSE
        PERFORM pg_notify(channel, TG_ARGV[0] || (to_jsonb(OLD) ->> TG_ARGV[1]));
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION tessera_blacklist_added() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    channel text := {channel};
BEGIN
    PERFORM pg_notify(channel, 'blacklist:' || NEW.jti);
    RETURN NULL;
END $$;
"#
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(manager, &functions(PER_SCHEMA)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(manager, &functions(SHARED)).await
    }
}
