//! HTTP integration tests: one binary, a fresh database per test.

mod helpers;

mod accounts;
mod asymmetric;
mod browser;
mod claims;
mod cli;
mod cookies;
mod deploy;
mod django_import;
mod django_passwords;
mod docs;
mod errors;
mod forward;
mod forward_identity;
mod groups;
mod input;
mod limits;
mod login;
mod mail;
mod me;
mod observability;
mod opaque;
mod races;
mod refresh;
mod register;
mod reuse;
mod scaleout;
mod sliding;
mod throttle;
mod tutorial;
mod vectors;
mod verify_blacklist;
