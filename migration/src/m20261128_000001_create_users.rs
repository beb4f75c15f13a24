use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Users::Id))
                    // Django's limit; case-sensitive uniqueness, as Django's
                    // default `username` field.
                    .col(string_len_uniq(Users::Username, 150))
                    // Optional in Djoser, stored as "" rather than NULL as Django does.
                    .col(string_len(Users::Email, 254).default(""))
                    // argon2id PHC string.
                    .col(string_len(Users::Password, 255))
                    .col(boolean(Users::IsActive).default(true))
                    .col(boolean(Users::IsStaff).default(false))
                    .col(boolean(Users::IsSuperuser).default(false))
                    .col(timestamp_with_time_zone(Users::DateJoined))
                    .col(timestamp_with_time_zone_null(Users::LastLogin))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    Password,
    IsActive,
    IsStaff,
    IsSuperuser,
    DateJoined,
    LastLogin,
}
