//! SeaORM entities: one module per table. Users, the refresh-token blacklist,
//! refresh-token families and opaque-key digests are stored; access tokens
//! never are.

pub mod auth_tokens;
pub mod token_blacklist;
pub mod token_families;
pub mod users;
