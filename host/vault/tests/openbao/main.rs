//! keyward-vault against a real OpenBao (and PostgreSQL for the database
//! engine), started by keyward-testkit on free loopback ports. Every test
//! starts its own server(s) and uses its own mounts.

mod auth;
mod common;
mod engines;
mod leases;
