//! A per-user refresh cutoff: "no refresh (or sliding) token issued before
//! this instant", set by logout_all and by an administrator. One timestamp
//! per user reaches every refresh token, those without a family row
//! (issued by Simple JWT before a migration) too. Kept apart from
//! `tokens_valid_after` (a password change), which also ends opaque keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Users::RefreshValidAfter))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::RefreshValidAfter)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    RefreshValidAfter,
}
