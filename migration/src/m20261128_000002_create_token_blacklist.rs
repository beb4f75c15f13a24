use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TokenBlacklist::Table)
                    .if_not_exists()
                    .col(big_pk_auto(TokenBlacklist::Id))
                    // The unique index is what makes "blacklist once" atomic:
                    // concurrent inserts of one jti cannot both succeed.
                    .col(string_len_uniq(TokenBlacklist::Jti, 255))
                    // No foreign key: the row must outlive a deleted user so
                    // the token stays refused until it expires.
                    .col(big_integer_null(TokenBlacklist::UserId))
                    .col(timestamp_with_time_zone(TokenBlacklist::ExpiresAt))
                    .col(timestamp_with_time_zone(TokenBlacklist::BlacklistedAt))
                    .to_owned(),
            )
            .await?;
        // The purge deletes by expiry.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_token_blacklist_expires_at")
                    .table(TokenBlacklist::Table)
                    .col(TokenBlacklist::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TokenBlacklist::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TokenBlacklist {
    Table,
    Id,
    Jti,
    UserId,
    ExpiresAt,
    BlacklistedAt,
}
