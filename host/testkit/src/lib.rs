//! Dev-only test harnesses: real servers on free loopback ports, started
//! with readiness polling (no fixed sleeps) and stopped on drop.
//!
//! - [`OpenBao`]: `bao server -dev` ([`OpenBao::start_dev`]) or a real
//!   server with on-disk (raft) storage, initialised and unsealed
//!   ([`OpenBao::start_persistent`], which keeps leases across restarts);
//! - [`Postgres`]: a private PostgreSQL cluster in a temporary directory.
//!
//! Missing tools are installed on demand ([`ensure_bao`],
//! [`ensure_postgres`]); when that is not possible the error says how to
//! install them, and the test using them fails — it never skips.
//!
//! Depends on no Keyward crate; never linked into a shipped binary.

mod error;
mod net;
mod openbao;
mod postgres;
mod tools;

pub use error::{Error, Result};
pub use net::{free_port, unique_mount};
pub use openbao::OpenBao;
pub use postgres::Postgres;
pub use tools::{OPENBAO_VERSION, PgBin, ensure_bao, ensure_postgres, tools_cache_dir};
