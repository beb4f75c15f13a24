//! Schema migrations, applied at start-up (unless `database.auto_migrate` is
//! off) and by `tessera migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_create_users;
mod m20261128_000002_create_token_blacklist;
mod m20261128_000003_create_auth_tokens;
mod m20261128_000004_create_token_families;
mod m20261201_000005_normalize_usernames;
mod m20261202_000006_create_groups;
mod m20261202_000007_refresh_cutoff;
mod m20261202_000008_cache_notify;
mod m20261202_000009_blacklist_notify;
mod m20261202_000010_cache_channel_per_schema;

pub struct Migrator;

/// Runs `sql` on PostgreSQL; elsewhere nothing (the cache's triggers: SQLite
/// needs none, each instance watches the file's data version).
async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_users::Migration),
            Box::new(m20261128_000002_create_token_blacklist::Migration),
            Box::new(m20261128_000003_create_auth_tokens::Migration),
            Box::new(m20261128_000004_create_token_families::Migration),
            Box::new(m20261201_000005_normalize_usernames::Migration),
            Box::new(m20261202_000006_create_groups::Migration),
            Box::new(m20261202_000007_refresh_cutoff::Migration),
            Box::new(m20261202_000008_cache_notify::Migration),
            Box::new(m20261202_000009_blacklist_notify::Migration),
            Box::new(m20261202_000010_cache_channel_per_schema::Migration),
        ]
    }
}
