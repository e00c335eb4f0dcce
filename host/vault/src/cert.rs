//! Validity of an issued certificate, for re-issuing it in time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// NotBefore.
    pub not_before: SystemTime,
    /// NotAfter.
    pub not_after: SystemTime,
}

impl Validity {
    /// The instant at `fraction` of the lifetime.
    pub fn at_fraction(&self, fraction: f64) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + life.mul_f64(fraction.clamp(0.0, 1.0))
    }
}

/// Validity of the first certificate in a PEM text.
pub fn pem_validity(pem: &str) -> Option<Validity> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let v = cert.validity();
    Some(Validity {
        not_before: from_unix(v.not_before.timestamp())?,
        not_after: from_unix(v.not_after.timestamp())?,
    })
}

/// Validity of the certificate in a PKI `issue`/`sign` answer's `data`:
/// from `certificate`, else from `expiration` (Unix seconds) with
/// NotBefore taken as now.
pub fn issued_validity(data: &serde_json::Value) -> Option<Validity> {
    if let Some(v) = data
        .get("certificate")
        .and_then(|c| c.as_str())
        .and_then(pem_validity)
    {
        return Some(v);
    }
    let exp = data.get("expiration").and_then(|e| e.as_i64())?;
    Some(Validity {
        not_before: SystemTime::now(),
        not_after: from_unix(exp)?,
    })
}

fn from_unix(secs: i64) -> Option<SystemTime> {
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}
