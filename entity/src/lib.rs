//! SeaORM entities: one module per table. Users and their groups, the
//! refresh-token blacklist, refresh-token families and opaque-key digests are
//! stored; access tokens never are.

pub mod auth_tokens;
pub mod groups;
pub mod token_blacklist;
pub mod token_families;
pub mod user_groups;
pub mod users;
