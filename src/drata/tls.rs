//! Trust: the CA certificates a run adds to its roots (`--ca-cert`, read strictly: the
//! user named that CA), and what a certificate failure is called when a server's
//! certificate is refused. Verification itself is rustls's, with the system's roots; no
//! option turns it off.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, RootCertStore};
use thiserror::Error;

/// The fix named by every certificate failure.
pub(crate) const CERTIFICATE_FIX: &str =
    "behind a TLS-inspecting proxy? pass --ca-cert with its CA, or set SSL_CERT_FILE";

/// A PEM bundle of CA certificates that cannot be used: a usage error, before anything
/// is sent.
#[derive(Debug, Error)]
pub enum CaFileError {
    #[error("{option} {}: cannot read it: {source}", path.display())]
    Unreadable {
        option: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{option} {}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)", path.display())]
    Empty { option: &'static str, path: PathBuf },
    #[error("{option} {}: certificate {index} cannot be trusted: {}", path.display(), problem.describe())]
    NotUsableCa {
        option: &'static str,
        path: PathBuf,
        index: usize,
        problem: super::certinfo::CaProblem,
    },
    #[error("SSL_CERT_DIR {}: {problem}; set it to a directory of CA certificates, or unset it", path.display())]
    CertDir {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("{sources}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----); point it at a bundle of CA certificates, or unset it")]
    StoreEmpty { sources: super::certinfo::Sources },
    #[error("{sources}: none of its {skipped} certificates can be used (expired, not valid yet or unparsable; -v names each); point it at a current bundle of CA certificates, or unset it")]
    NoneUsable {
        sources: super::certinfo::Sources,
        skipped: usize,
    },
    #[error("{option} {}: certificate {index} is not a usable CA certificate ({reason})", path.display())]
    Unusable {
        option: &'static str,
        path: PathBuf,
        index: usize,
        reason: String,
    },
}

/// Reads a PEM bundle: every certificate in it, each checked to parse as a trust anchor.
/// `option` names where the path came from (`--ca-cert`). Strict, unlike the stores of
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`: a CA the user names that cannot serve is a mistake
/// to say, not a certificate to pass over.
pub(crate) fn read_ca_bundle(
    option: &'static str,
    path: &Path,
) -> Result<Vec<reqwest::Certificate>, CaFileError> {
    let bytes = std::fs::read(path).map_err(|source| CaFileError::Unreadable {
        option,
        path: path.to_owned(),
        source,
    })?;
    // Sections that are not certificates (keys, text between blocks) are passed over.
    let ders: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if ders.is_empty() {
        return Err(CaFileError::Empty {
            option,
            path: path.to_owned(),
        });
    }
    let mut store = RootCertStore::empty();
    let mut certificates = Vec::with_capacity(ders.len());
    let now = std::time::SystemTime::now();
    for (index, der) in ders.into_iter().enumerate() {
        if let Some(problem) = super::certinfo::ca_problem(der.as_ref(), now) {
            return Err(CaFileError::NotUsableCa {
                option,
                path: path.to_owned(),
                index: index + 1,
                problem,
            });
        }
        store.add(der.clone()).map_err(|e| CaFileError::Unusable {
            option,
            path: path.to_owned(),
            index: index + 1,
            reason: match e {
                rustls::Error::InvalidCertificate(problem) => format!("{problem:?}"),
                other => other.to_string(),
            },
        })?;
        let certificate =
            reqwest::Certificate::from_der(der.as_ref()).map_err(|e| CaFileError::Unusable {
                option,
                path: path.to_owned(),
                index: index + 1,
                reason: e.to_string(),
            })?;
        certificates.push(certificate);
    }
    Ok(certificates)
}

/// Why a server's certificate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertProblem {
    /// Not signed by a CA this machine trusts (self-signed, or a proxy's own CA).
    UnknownIssuer,
    /// Past its end date, or before its start date.
    Expired,
    /// Issued for another host name.
    WrongName,
    /// Anything else rustls refuses (revoked, bad signature, bad encoding, ...).
    Other,
}

impl CertProblem {
    fn of(error: &CertificateError) -> Self {
        match error {
            CertificateError::UnknownIssuer => CertProblem::UnknownIssuer,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => CertProblem::Expired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                CertProblem::WrongName
            }
            _ => CertProblem::Other,
        }
    }

    fn describe(self, error: &CertificateError) -> String {
        match (self, error) {
            (CertProblem::UnknownIssuer, _) => {
                "unknown issuer (not signed by a CA this machine trusts)".to_owned()
            }
            (CertProblem::Expired, CertificateError::NotValidYet)
            | (CertProblem::Expired, CertificateError::NotValidYetContext { .. }) => {
                "expired (not valid yet: check this machine's clock)".to_owned()
            }
            (CertProblem::Expired, _) => "expired".to_owned(),
            (CertProblem::WrongName, _) => "wrong name (issued for another host)".to_owned(),
            (CertProblem::Other, other) => format!("other ({other:?})"),
        }
    }
}

/// The certificate error behind a failed request, if that is what it was: rustls's error
/// is found along the source chain, inside the `io::Error` the handshake returns.
pub(crate) fn certificate_error(
    error: &(dyn std::error::Error + 'static),
) -> Option<CertificateError> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(rustls::Error::InvalidCertificate(cert)) = error.downcast_ref::<rustls::Error>()
        {
            return Some(cert.clone());
        }
        // `io::Error::source` skips the error it wraps; look inside it.
        if let Some(inner) = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(found) = certificate_error(inner) {
                return Some(found);
            }
        }
        current = error.source();
    }
    None
}

/// The problem and the one line said about it: the host, the problem, the fix.
pub(crate) fn certificate_failure(host: &str, error: &CertificateError) -> (CertProblem, String) {
    let problem = CertProblem::of(error);
    let message = format!(
        "the TLS certificate of {host} was refused: {}; {CERTIFICATE_FIX}",
        problem.describe(error)
    );
    (problem, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_named() {
        let (problem, message) =
            certificate_failure("example.com", &CertificateError::UnknownIssuer);
        assert_eq!(problem, CertProblem::UnknownIssuer);
        assert_eq!(
            message,
            "the TLS certificate of example.com was refused: unknown issuer (not signed by a CA \
             this machine trusts); behind a TLS-inspecting proxy? pass --ca-cert with its CA, \
             or set SSL_CERT_FILE"
        );
        assert_eq!(
            certificate_failure("h", &CertificateError::Expired).0,
            CertProblem::Expired
        );
        assert_eq!(
            certificate_failure("h", &CertificateError::NotValidForName).0,
            CertProblem::WrongName
        );
        let (problem, message) = certificate_failure("h", &CertificateError::Revoked);
        assert_eq!(problem, CertProblem::Other);
        assert!(message.contains("other (Revoked)"), "{message}");
    }

    #[test]
    fn the_rustls_error_is_found_inside_an_io_error() {
        let rustls_error = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_error);
        let outer = std::io::Error::other(io);
        assert_eq!(
            certificate_error(&outer),
            Some(CertificateError::UnknownIssuer)
        );
        let plain = std::io::Error::other("connection refused");
        assert_eq!(certificate_error(&plain), None);
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = read_ca_bundle("--ca-cert", &path).unwrap_err();
        assert!(matches!(error, CaFileError::Empty { .. }), "{error}");
        let missing = dir.path().join("missing.pem");
        let error = read_ca_bundle("--ca-cert", &missing).unwrap_err();
        assert!(matches!(error, CaFileError::Unreadable { .. }), "{error}");
    }
}
