use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Django's auth_group: a unique name of at most 150 characters.
        manager
            .create_table(
                Table::create()
                    .table(Groups::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Groups::Id))
                    .col(string_len_uniq(Groups::Name, 150))
                    .to_owned(),
            )
            .await?;
        // Django's auth_user_groups: one row per membership, gone with the
        // user or the group.
        manager
            .create_table(
                Table::create()
                    .table(UserGroups::Table)
                    .if_not_exists()
                    .col(big_pk_auto(UserGroups::Id))
                    .col(big_integer(UserGroups::UserId))
                    .col(big_integer(UserGroups::GroupId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_groups_user")
                            .from(UserGroups::Table, UserGroups::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_groups_group")
                            .from(UserGroups::Table, UserGroups::GroupId)
                            .to(Groups::Table, Groups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The unique pair makes adding a membership twice a no-op decided by
        // the database, and serves the lookup of a user's groups.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_user_groups_user_group")
                    .table(UserGroups::Table)
                    .col(UserGroups::UserId)
                    .col(UserGroups::GroupId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Deleting a group finds its memberships by group.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_user_groups_group_id")
                    .table(UserGroups::Table)
                    .col(UserGroups::GroupId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UserGroups::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Groups::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    Id,
    Name,
}

#[derive(DeriveIden)]
enum UserGroups {
    Table,
    Id,
    UserId,
    GroupId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
