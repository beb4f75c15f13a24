use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TokenFamilies::Table)
                    .if_not_exists()
                    .col(string_len(TokenFamilies::Id, 255).primary_key())
                    // No foreign key, as for the blacklist: a revoked family
                    // must stay revoked until its tokens expire.
                    .col(big_integer(TokenFamilies::UserId))
                    .col(string_len(TokenFamilies::CurrentJti, 255))
                    .col(string_len(TokenFamilies::AccessJti, 255))
                    .col(big_integer(TokenFamilies::IssuedAt))
                    .col(string_len_null(TokenFamilies::PreviousJti, 255))
                    .col(timestamp_with_time_zone_null(TokenFamilies::RotatedAt))
                    .col(timestamp_with_time_zone(TokenFamilies::ExpiresAt))
                    .col(timestamp_with_time_zone_null(TokenFamilies::RevokedAt))
                    .col(timestamp_with_time_zone(TokenFamilies::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // logout_all revokes by user; the purge deletes by expiry.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_token_families_user_id")
                    .table(TokenFamilies::Table)
                    .col(TokenFamilies::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_token_families_expires_at")
                    .table(TokenFamilies::Table)
                    .col(TokenFamilies::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TokenFamilies::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TokenFamilies {
    Table,
    Id,
    UserId,
    CurrentJti,
    AccessJti,
    IssuedAt,
    PreviousJti,
    RotatedAt,
    ExpiresAt,
    RevokedAt,
    CreatedAt,
}
