//! HTTP integration tests: one binary, a fresh database per test.

mod helpers;

mod cli;
mod docs;
mod errors;
mod login;
mod me;
mod races;
mod refresh;
mod register;
mod vectors;
mod verify_blacklist;
