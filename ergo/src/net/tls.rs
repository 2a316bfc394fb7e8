//! The certificate a daemon serves over TLS, from PEM files it can read
//! again while running (a renewed certificate takes effect for the
//! connections accepted after the reload).

use std::path::PathBuf;
use std::sync::Arc;

use crate::dist::{TlsError, TlsOptions};

/// A daemon's TLS certificate: the chain and key as PEM files, and
/// optionally a CA bundle clients must present a certificate of (mutual
/// TLS).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// The CA clients' certificates must chain to; `None`: clients present
    /// none.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The chain in `cert` and the key in `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }

    /// Clients must present a certificate signed by a CA of this bundle.
    pub fn client_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(ca.into());
        self
    }

    /// Reads the files into a server configuration.
    pub(crate) fn load(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut opts = TlsOptions::from_pem_files(&self.cert, &self.key)?;
        if let Some(ca) = &self.client_ca {
            opts = opts.verify_peers(ca)?;
        }
        opts.server_config()
    }
}
