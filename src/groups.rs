//! Data access for groups and memberships (Django's `auth_group` and
//! `auth_user_groups`). No HTTP types here.

use entity::{groups, user_groups};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};

use crate::db::{StoreError, is_unique_violation};

pub use groups::Model as Group;

#[derive(Debug, thiserror::Error)]
pub enum CreateGroupError {
    #[error("a group with that name already exists")]
    NameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every group, by name.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Group>, StoreError> {
    Ok(groups::Entity::find()
        .order_by_asc(groups::Column::Name)
        .all(db)
        .await?)
}

pub async fn find(db: &impl ConnectionTrait, id: i64) -> Result<Option<Group>, StoreError> {
    Ok(groups::Entity::find_by_id(id).one(db).await?)
}

/// Exact, case-sensitive match, as Django's `Group.objects.get(name=...)`.
pub async fn find_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<Group>, StoreError> {
    Ok(groups::Entity::find()
        .filter(groups::Column::Name.eq(name))
        .one(db)
        .await?)
}

/// Inserts a group; the unique index, not a prior lookup, decides between
/// two concurrent creations of one name.
pub async fn create(db: &impl ConnectionTrait, name: &str) -> Result<Group, CreateGroupError> {
    let row = groups::ActiveModel {
        name: Set(name.to_owned()),
        ..Default::default()
    };
    let inserted = groups::Entity::insert(row).exec(db).await;
    match inserted {
        Ok(r) => Ok(Group {
            id: r.last_insert_id,
            name: name.to_owned(),
        }),
        Err(e) if is_unique_violation(&e) => Err(CreateGroupError::NameTaken),
        Err(e) => Err(CreateGroupError::Store(e.into())),
    }
}

/// Deletes a group and its memberships, together. `false` if there was
/// no such group.
pub async fn delete(db: &DatabaseConnection, id: i64) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    // Memberships explicitly, not only by the foreign key's cascade: the
    // outcome must not depend on the database enforcing it.
    user_groups::Entity::delete_many()
        .filter(user_groups::Column::GroupId.eq(id))
        .exec(&txn)
        .await?;
    let r = groups::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(r.rows_affected > 0)
}

/// The groups of a user, by name.
pub async fn of_user(db: &impl ConnectionTrait, user_id: i64) -> Result<Vec<Group>, StoreError> {
    let memberships = Query::select()
        .column(user_groups::Column::GroupId)
        .from(user_groups::Entity)
        .and_where(user_groups::Column::UserId.eq(user_id))
        .to_owned();
    Ok(groups::Entity::find()
        .filter(groups::Column::Id.in_subquery(memberships))
        .order_by_asc(groups::Column::Name)
        .all(db)
        .await?)
}

/// The names of a user's groups, sorted: what tokens and headers carry.
pub async fn names_of(db: &impl ConnectionTrait, user_id: i64) -> Result<Vec<String>, StoreError> {
    Ok(of_user(db, user_id)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// The user or the group is gone (deleted meanwhile).
    #[error("no such user or group")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds a user to a group; `false` if they were in it already (one
/// statement, so two concurrent adds cannot fail on the unique pair).
pub async fn add_member(
    db: &impl ConnectionTrait,
    user_id: i64,
    group_id: i64,
) -> Result<bool, MemberError> {
    let row = user_groups::ActiveModel {
        user_id: Set(user_id),
        group_id: Set(group_id),
        ..Default::default()
    };
    let inserted = user_groups::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([user_groups::Column::UserId, user_groups::Column::GroupId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await;
    match inserted {
        Ok(n) => Ok(n == 1),
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
            ) =>
        {
            Err(MemberError::Gone)
        }
        Err(e) => Err(MemberError::Store(e.into())),
    }
}

/// Removes a user from a group; `false` if they were not in it.
pub async fn remove_member(
    db: &impl ConnectionTrait,
    user_id: i64,
    group_id: i64,
) -> Result<bool, StoreError> {
    let r = user_groups::Entity::delete_many()
        .filter(user_groups::Column::UserId.eq(user_id))
        .filter(user_groups::Column::GroupId.eq(group_id))
        .exec(db)
        .await?;
    Ok(r.rows_affected > 0)
}
