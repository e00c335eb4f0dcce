//! Dev-only test harnesses: real servers on free loopback ports, started
//! with readiness polling (no fixed sleeps) and stopped on drop.
//!
//! - [`OpenBao`]: `bao server -dev` ([`OpenBao::start_dev`]) or a real
//!   server with on-disk (raft) storage, initialised and unsealed
//!   ([`OpenBao::start_persistent`], which keeps leases across restarts);
//! - [`Postgres`]: a private PostgreSQL cluster in a temporary directory;
//! - [`KubeApiServer`]: a real kube-apiserver 1.20 with its etcd, TLS,
//!   RBAC and the TokenRequest/TokenReview APIs (no controllers, no
//!   kubelet).
//!
//! Missing tools are installed on demand ([`ensure_bao`],
//! [`ensure_postgres`], and [`ensure_kube_apiserver`], which builds
//! kube-apiserver from Debian's source package once per machine); when
//! that is not possible the error says how to install them, and the test
//! using them fails — it never skips.
//!
//! Depends on no Keyward crate; never linked into a shipped binary.

mod error;
mod kube;
mod kube_build;
mod net;
mod openbao;
mod postgres;
mod tools;

pub use error::{Error, Result};
pub use kube::{KubeApiServer, SERVICE_ACCOUNT_ISSUER};
pub use kube_build::{KUBERNETES_VERSION, KubeBins, ensure_kube_apiserver};
pub use net::{free_port, unique_mount};
pub use openbao::OpenBao;
pub use postgres::Postgres;
pub use tools::{OPENBAO_VERSION, PgBin, ensure_bao, ensure_postgres, tools_cache_dir};
