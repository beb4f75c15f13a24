use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthTokens::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuthTokens::Id))
                    // SHA-256 of the key, hex: the key itself is never stored,
                    // so a leaked table yields no usable credential.
                    .col(string_len_uniq(AuthTokens::Digest, 64))
                    .col(big_integer(AuthTokens::UserId))
                    .col(timestamp_with_time_zone(AuthTokens::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_tokens_user")
                            .from(AuthTokens::Table, AuthTokens::UserId)
                            .to(Users::Table, Users::Id)
                            // Deleting a user ends their keys with them.
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // logoutall and revocation delete by user.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_auth_tokens_user_id")
                    .table(AuthTokens::Table)
                    .col(AuthTokens::UserId)
                    .to_owned(),
            )
            .await?;
        // Refresh tokens issued before this instant are refused: one timestamp
        // per user revokes every session on a password change.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Users::TokensValidAfter))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::TokensValidAfter)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(AuthTokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuthTokens {
    Table,
    Id,
    Digest,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    TokensValidAfter,
}
