//! The trust store that `SSL_CERT_FILE` and `SSL_CERT_DIR` name, read as OpenSSL reads it.
//! A system bundle holds expired roots (Debian's keeps some for years) and now and then a
//! certificate no parser takes; curl, git and Python trust the rest, so a certificate that
//! cannot serve is skipped (counted, and named for the log) and only a store left with no
//! usable certificate is refused: otherwise every request would fail with "unknown
//! issuer", which names the wrong cause.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use super::certinfo::{self, CaProblem, Sources};
use super::tls::CaFileError;

/// Where the trusted roots come from.
#[derive(Debug)]
pub(crate) enum Roots {
    /// The operating system's store, as reqwest loads it.
    System,
    /// The certificates read here, which replace the system store.
    Replaced(Store),
}

/// The usable certificates read from a store, and those passed over.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub certificates: Vec<reqwest::Certificate>,
    pub skipped: Vec<Skipped>,
    /// Where they were read from, for the log.
    pub sources: Sources,
}

/// A certificate of a store that is not trusted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// The file and the certificate's place in it (1 for the first).
    pub path: PathBuf,
    pub index: usize,
    /// Its subject's common name, when it can be read.
    pub name: Option<String>,
    pub why: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SkipReason {
    Invalid(CaProblem),
    /// Neither a PEM block that decodes nor a certificate rustls can take as a root.
    Unparsable,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: certificate {}", self.path.display(), self.index)?;
        if let Some(name) = &self.name {
            write!(f, " ({name})")?;
        }
        match &self.why {
            SkipReason::Invalid(problem) => write!(f, " skipped: {}", problem.describe()),
            SkipReason::Unparsable => write!(f, " skipped: it cannot be parsed"),
        }
    }
}

/// The roots `SSL_CERT_FILE` and `SSL_CERT_DIR` name. Each set to the empty string counts
/// as unset, as with OpenSSL.
pub(crate) fn roots_from_env() -> Result<Roots, CaFileError> {
    let file = std::env::var_os("SSL_CERT_FILE");
    let dir = std::env::var_os("SSL_CERT_DIR");
    roots_from(file, dir, SystemTime::now())
}

fn roots_from(
    file: Option<OsString>,
    dir: Option<OsString>,
    now: SystemTime,
) -> Result<Roots, CaFileError> {
    let file_set_but_empty = file.as_ref().is_some_and(|f| f.is_empty());
    let sources = Sources {
        file: file.filter(|f| !f.is_empty()).map(PathBuf::from),
        // Several directories may be named, separated as in PATH.
        dirs: dir
            .map(|d| std::env::split_paths(&d).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|d| !d.as_os_str().is_empty())
            .collect(),
        system: false,
    };
    if sources.file.is_some() || !sources.dirs.is_empty() {
        return read_store(sources, now).map(Roots::Replaced);
    }
    if file_set_but_empty {
        // reqwest's loader would read an empty SSL_CERT_FILE as a file named "" and
        // trust nothing: read the system's usual places here instead.
        return system_store(now);
    }
    Ok(Roots::System)
}

#[cfg(all(unix, not(target_os = "macos")))]
fn system_store(now: SystemTime) -> Result<Roots, CaFileError> {
    let probe = openssl_probe::probe();
    let sources = Sources {
        file: probe.cert_file,
        dirs: probe.cert_dir,
        system: true,
    };
    read_store(sources, now).map(Roots::Replaced)
}

/// The keychain or the Windows store: reqwest reads them without the variables.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn system_store(_now: SystemTime) -> Result<Roots, CaFileError> {
    Ok(Roots::System)
}

/// Every certificate of the file and of the directories' files, each read once; refused
/// only when none of them can be used.
fn read_store(sources: Sources, now: SystemTime) -> Result<Store, CaFileError> {
    let mut reader = Reader::new(now);
    if let Some(path) = &sources.file {
        let bytes = std::fs::read(path).map_err(|source| CaFileError::Unreadable {
            option: "SSL_CERT_FILE",
            path: path.clone(),
            source,
        })?;
        reader.mark_read(path);
        reader.read_pem(path, &bytes);
    }
    for dir in &sources.dirs {
        reader.read_dir(dir)?;
    }
    let Reader {
        certificates,
        skipped,
        ..
    } = reader;
    if certificates.is_empty() {
        return Err(if skipped.is_empty() {
            CaFileError::StoreEmpty { sources }
        } else {
            CaFileError::NoneUsable {
                skipped: skipped.len(),
                sources,
            }
        });
    }
    Ok(Store {
        certificates,
        skipped,
        sources,
    })
}

/// What has been read so far.
struct Reader {
    now: SystemTime,
    certificates: Vec<reqwest::Certificate>,
    skipped: Vec<Skipped>,
    /// A directory made by `openssl rehash` links each certificate under several names,
    /// and often holds the bundle too: files are read once (by device and inode) and
    /// certificates trusted once.
    files: HashSet<(u64, u64)>,
    seen: HashSet<Vec<u8>>,
}

impl Reader {
    fn new(now: SystemTime) -> Self {
        Self {
            now,
            certificates: Vec::new(),
            skipped: Vec::new(),
            files: HashSet::new(),
            seen: HashSet::new(),
        }
    }

    /// False when `path` was read before.
    fn mark_read(&mut self, path: &Path) -> bool {
        match std::fs::metadata(path).ok().as_ref().and_then(file_id) {
            Some(id) => self.files.insert(id),
            None => true,
        }
    }

    /// The regular files of `dir` (links followed), not its subdirectories. A directory
    /// that is missing or cannot be listed is refused: the variable is wrong.
    fn read_dir(&mut self, dir: &Path) -> Result<(), CaFileError> {
        let problem = |problem| CaFileError::CertDir {
            path: dir.to_owned(),
            problem,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => problem("no such directory"),
            _ => problem("cannot be read as a directory"),
        })?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        // Read in name order, so that what the log names is the same from run to run.
        paths.sort();
        for path in paths {
            // Only regular files: a FIFO or a device would block the read.
            let regular = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
            if !regular || !self.mark_read(&path) {
                continue;
            }
            // A file that cannot be read is passed over, as OpenSSL does.
            if let Ok(bytes) = std::fs::read(&path) {
                self.read_pem(&path, &bytes);
            }
        }
        Ok(())
    }

    /// Every PEM certificate of `bytes`; other sections (keys, text) are passed over.
    fn read_pem(&mut self, path: &Path, bytes: &[u8]) {
        for (index, section) in CertificateDer::pem_slice_iter(bytes).enumerate() {
            let skip = |name, why| Skipped {
                path: path.to_owned(),
                index: index + 1,
                name,
                why,
            };
            let der = match section {
                Ok(der) => der,
                Err(_) => {
                    self.skipped.push(skip(None, SkipReason::Unparsable));
                    continue;
                }
            };
            if !self.seen.insert(der.as_ref().to_vec()) {
                continue;
            }
            match usable_root(&der, self.now) {
                Ok(certificate) => self.certificates.push(certificate),
                Err(why) => self.skipped.push(skip(certinfo::common_name(&der), why)),
            }
        }
    }
}

/// The certificate as a root reqwest takes, unless it has expired, is not valid yet or
/// cannot be parsed. One that is not marked a CA is kept: OpenSSL trusts what its store
/// holds, and an old root may predate the extension.
fn usable_root(
    der: &CertificateDer<'_>,
    now: SystemTime,
) -> Result<reqwest::Certificate, SkipReason> {
    match certinfo::ca_problem(der.as_ref(), now) {
        Some(problem @ (CaProblem::Expired | CaProblem::NotYetValid)) => {
            return Err(SkipReason::Invalid(problem))
        }
        Some(CaProblem::NotCa) | None => {}
    }
    // reqwest refuses to build a client with a root rustls cannot take: test it first.
    RootCertStore::empty()
        .add(der.clone().into_owned())
        .map_err(|_| SkipReason::Unparsable)?;
    reqwest::Certificate::from_der(der.as_ref()).map_err(|_| SkipReason::Unparsable)
}

#[cfg(unix)]
fn file_id(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

/// No stable identity: each file is read (its certificates are still trusted once).
#[cfg(not(unix))]
fn file_id(_metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA named `name`, valid now or only during 2020.
    fn ca(name: &str, expired: bool) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn os(value: &str) -> Option<OsString> {
        Some(OsString::from(value))
    }

    fn replaced(roots: Roots) -> Store {
        match roots {
            Roots::Replaced(store) => store,
            Roots::System => panic!("the system store, not the variables'"),
        }
    }

    const GARBAGE: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    #[test]
    fn expired_and_unparsable_certificates_are_skipped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.pem");
        let pem = [
            ca("Old Root", true),
            GARBAGE.to_owned(),
            ca("Current Root", false),
        ];
        std::fs::write(&bundle, pem.concat()).unwrap();
        let store =
            replaced(roots_from(os(bundle.to_str().unwrap()), None, SystemTime::now()).unwrap());
        assert_eq!(store.certificates.len(), 1);
        let named: Vec<String> = store.skipped.iter().map(ToString::to_string).collect();
        let at = bundle.display();
        assert_eq!(
            named,
            [
                format!("{at}: certificate 1 (Old Root) skipped: it has expired"),
                format!("{at}: certificate 2 skipped: it cannot be parsed"),
            ]
        );
    }

    #[test]
    fn a_store_with_no_usable_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.pem");
        std::fs::write(&old, ca("Old Root", true) + GARBAGE).unwrap();
        let error = roots_from(os(old.to_str().unwrap()), None, SystemTime::now()).unwrap_err();
        assert!(
            matches!(&error, CaFileError::NoneUsable { skipped: 2, .. }),
            "{error}"
        );
        assert!(error.to_string().starts_with(&format!(
            "SSL_CERT_FILE {}: none of its 2 certificates can be used",
            old.display()
        )));
        let text = dir.path().join("text.pem");
        std::fs::write(&text, "no certificate here\n").unwrap();
        let error = roots_from(None, os(dir.path().to_str().unwrap()), SystemTime::now())
            .map(drop)
            .unwrap_err();
        // The directory holds old.pem too: its certificates are skipped, none usable.
        assert!(matches!(error, CaFileError::NoneUsable { .. }), "{error}");
        std::fs::remove_file(&old).unwrap();
        let error = roots_from(None, os(dir.path().to_str().unwrap()), SystemTime::now())
            .map(drop)
            .unwrap_err();
        assert!(matches!(error, CaFileError::StoreEmpty { .. }), "{error}");
    }

    #[test]
    fn empty_variables_count_as_unset() {
        assert!(matches!(
            roots_from(None, os(""), SystemTime::now()),
            Ok(Roots::System)
        ));
        assert!(matches!(
            roots_from(None, os(":"), SystemTime::now()),
            Ok(Roots::System)
        ));
        assert!(matches!(
            roots_from(None, None, SystemTime::now()),
            Ok(Roots::System)
        ));
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("ca.pem");
        std::fs::write(&bundle, ca("Current Root", false)).unwrap();
        let store =
            replaced(roots_from(os(bundle.to_str().unwrap()), os(""), SystemTime::now()).unwrap());
        assert_eq!(store.certificates.len(), 1);
        assert!(store.sources.dirs.is_empty());
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn an_empty_ssl_cert_file_reads_the_system_store_not_a_file_named_nothing() {
        // The machine's store, wherever openssl-probe finds it: read, not refused.
        match roots_from(os(""), None, SystemTime::now()) {
            Ok(Roots::Replaced(store)) => assert!(store.sources.system),
            Err(CaFileError::StoreEmpty { sources }) => assert!(sources.system),
            other => panic!("{other:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_of_links_is_read_once_per_file_and_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pem = ca("Current Root", false);
        std::fs::write(dir.path().join("root.pem"), &pem).unwrap();
        std::os::unix::fs::symlink("root.pem", dir.path().join("1a2b3c4d.0")).unwrap();
        std::fs::write(dir.path().join("bundle.crt"), pem.clone() + &pem).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let bundle = dir.path().join("bundle.crt");
        let store = replaced(
            roots_from(
                os(bundle.to_str().unwrap()),
                os(dir.path().to_str().unwrap()),
                SystemTime::now(),
            )
            .unwrap(),
        );
        assert_eq!(store.certificates.len(), 1);
        assert!(store.skipped.is_empty());
        let missing = dir.path().join("missing");
        let error = roots_from(None, os(missing.to_str().unwrap()), SystemTime::now())
            .map(drop)
            .unwrap_err();
        assert!(error.to_string().contains("no such directory"), "{error}");
    }
}
