//! TLS distribution, as Erlang's `-proto_dist inet_tls` speaks it: EPMD
//! stays plaintext, every distribution connection is TLS from its first
//! byte, and the distribution handshake runs inside it with 4-byte length
//! prefixes (the `{packet, 4}` that `inet_tls_dist` sets), after which the
//! ordinary frames follow.
//!
//! Two ways to set it up, as [`TlsOptions`] says:
//! - **auto**: a self-signed certificate made when the node starts, and any
//!   peer certificate accepted (what an Erlang node configured with
//!   `{verify, verify_none}` expects);
//! - **strict**: a certificate chain and key from PEM files, and with a CA
//!   bundle, every peer verified against it: a server's certificate must
//!   also name the host of the node connected to, and a connecting node must
//!   present a certificate of its own (mutual TLS).
//!
//! A node is either TLS or plain, as an Erlang node is: a plain peer that
//! knocks on a TLS node is refused (its first bytes are not a TLS hello),
//! and the reverse.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How a node's distribution uses TLS ([`crate::NodeBuilder::tls`]).
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), ergo::dist::TlsError> {
/// // Auto mode: a self-signed certificate, any peer accepted.
/// let auto = ergo::dist::TlsOptions::auto()?;
/// // Strict mode with mutual TLS: peers verified against the CA.
/// let strict = ergo::dist::TlsOptions::from_pem_files("node.pem", "node.key")?
///     .verify_peers("ca.pem")?;
/// # let _ = (auto, strict);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsOptions {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    /// The CA that peers' certificates must chain to; `None`: any peer.
    ca: Option<Arc<RootCertStore>>,
    /// Where the certificate came from, for messages.
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Generated,
    Files { cert: PathBuf, ca: Option<PathBuf> },
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("TlsOptions")
            .field("source", &self.source)
            .field("chain_len", &self.chain.len())
            .field("verify_peers", &self.ca.is_some())
            .finish_non_exhaustive()
    }
}

/// Why TLS could not be set up.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it gave.
        error: io::Error,
    },
    /// A PEM file held no certificate.
    NoCertificate(PathBuf),
    /// A PEM file held no private key.
    NoKey(PathBuf),
    /// A CA certificate was refused.
    BadCa {
        /// The CA bundle.
        path: PathBuf,
        /// What was wrong with it.
        why: String,
    },
    /// The certificate and key do not make a usable TLS configuration
    /// (the key does not match, or its kind is not supported).
    Config(String),
    /// A self-signed certificate could not be made.
    Generate(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            TlsError::NoCertificate(p) => write!(f, "{} holds no PEM certificate", p.display()),
            TlsError::NoKey(p) => write!(f, "{} holds no PEM private key", p.display()),
            TlsError::BadCa { path, why } => {
                write!(f, "the CA bundle {} is not usable: {why}", path.display())
            }
            TlsError::Config(why) => write!(f, "the certificate and key are not usable: {why}"),
            TlsError::Generate(why) => write!(f, "cannot make a self-signed certificate: {why}"),
        }
    }
}

impl std::error::Error for TlsError {}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_path_buf(),
        error,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(chain)
}

impl TlsOptions {
    /// Auto mode: a self-signed certificate made now (for the host names
    /// `localhost` and the node's own host), and any peer certificate
    /// accepted. Traffic is encrypted; peers are not authenticated beyond
    /// the cookie.
    pub fn auto() -> Result<TlsOptions, TlsError> {
        TlsOptions::auto_for(&[])
    }

    /// [`TlsOptions::auto`] with these host names (or IP addresses) in the
    /// certificate besides `localhost` and `127.0.0.1`.
    pub fn auto_for(hosts: &[&str]) -> Result<TlsOptions, TlsError> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        names.extend(hosts.iter().map(|h| h.to_string()));
        names.dedup();
        let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(names.clone())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        // Erlang checks a server's certificate for the host of the node's
        // name as a DNS name, even when that host is an IP address: such
        // hosts are named both ways.
        for ip in names
            .iter()
            .filter(|h| h.parse::<std::net::IpAddr>().is_ok())
        {
            let dns = ip
                .as_str()
                .try_into()
                .map_err(|e: rcgen::Error| TlsError::Generate(e.to_string()))?;
            params.subject_alt_names.push(rcgen::SanType::DnsName(dns));
        }
        let cert = params
            .self_signed(&key)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let key = PrivateKeyDer::from(rustls::pki_types::PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        ));
        TlsOptions::checked(vec![cert.der().clone()], key, Source::Generated)
    }

    /// Strict mode: this node's certificate chain (leaf first) and private
    /// key, from PEM files. Peers are not verified until
    /// [`TlsOptions::verify_peers`] names the CA they must chain to.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsOptions, TlsError> {
        let (cert_path, key_path) = (cert_chain.as_ref(), key.as_ref());
        let chain = certificates(cert_path)?;
        let key = PrivateKeyDer::from_pem_slice(&read_file(key_path)?)
            .map_err(|_| TlsError::NoKey(key_path.to_path_buf()))?;
        TlsOptions::checked(
            chain,
            key,
            Source::Files {
                cert: cert_path.to_path_buf(),
                ca: None,
            },
        )
    }

    /// Verifies every peer against the CA certificates of this PEM bundle:
    /// a node this one connects to must present a certificate that chains
    /// to one of them and names the host part of its node name; a node
    /// that connects here must present one that chains to them (mutual
    /// TLS).
    pub fn verify_peers(mut self, ca_bundle: impl AsRef<Path>) -> Result<TlsOptions, TlsError> {
        let path = ca_bundle.as_ref();
        let mut roots = RootCertStore::empty();
        for cert in certificates(path)? {
            roots.add(cert).map_err(|e| TlsError::BadCa {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?;
        }
        self.ca = Some(Arc::new(roots));
        if let Source::Files { ca, .. } = &mut self.source {
            *ca = Some(path.to_path_buf());
        }
        // Both configurations must build.
        self.server_config()?;
        self.client_config()?;
        Ok(self)
    }

    /// How this node does TLS, in a few words for its log.
    pub(crate) fn describe(&self) -> String {
        let cert = match &self.source {
            Source::Generated => "a self-signed certificate made at start".to_string(),
            Source::Files { cert, .. } => format!("the certificate of {}", cert.display()),
        };
        let peers = match &self.source {
            Source::Files { ca: Some(ca), .. } => {
                format!("peers verified against {}", ca.display())
            }
            _ if self.ca.is_some() => "peers verified".to_string(),
            _ => "any peer certificate accepted".to_string(),
        };
        format!("TLS with {cert}, {peers}")
    }

    /// Whether peers are verified ([`TlsOptions::verify_peers`]).
    pub fn verifies_peers(&self) -> bool {
        self.ca.is_some()
    }

    /// This node's certificate chain, DER-encoded, leaf first (in auto
    /// mode, the certificate made at start).
    pub fn certificate_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    fn checked(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        source: Source,
    ) -> Result<TlsOptions, TlsError> {
        let options = TlsOptions {
            chain,
            key: Arc::new(key),
            ca: None,
            source,
        };
        options.server_config()?;
        options.client_config()?;
        Ok(options)
    }

    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &self.ca {
            Some(roots) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                        .build()
                        .map_err(|e| TlsError::Config(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Arc::new(config))
    }

    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &self.ca {
            Some(roots) => {
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots.clone(),
                    provider.clone(),
                )
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
                builder.with_webpki_verifier(verifier)
            }
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                    provider.signature_verification_algorithms,
                ))),
        };
        let mut config = builder
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        // Erlang's side names no host when connecting by IP address; ours
        // sends the host name when it is one.
        config.enable_sni = true;
        Ok(Arc::new(config))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Auto mode's verifier: any certificate is taken (the peer is not
/// authenticated), but the handshake's signatures are still checked, so
/// that the peer holds the key of the certificate it sent.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// What a TLS handshake's failure means, in an operator's words.
pub(crate) fn explain(e: &io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                "the peer closed the connection during the TLS handshake (it may not speak TLS, \
                 or refused this node's certificate)"
                    .to_string()
            }
            io::ErrorKind::InvalidData => {
                format!("the peer does not speak TLS (it may be a plain distribution node): {e}")
            }
            _ => e.to_string(),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "the peer's certificate is not signed by a trusted CA (unknown CA)".to_string()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the peer's certificate has expired ({c})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the peer's certificate is not valid yet ({c})")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the peer's certificate does not name its host (wrong host: {c})")
            }
            CertificateError::BadSignature => {
                "the peer's certificate has a bad signature".to_string()
            }
            other => format!("the peer's certificate was refused: {other}"),
        },
        rustls::Error::NoCertificatesPresented => {
            "the peer presented no client certificate, and this node requires one".to_string()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("the peer refused the TLS handshake (alert: {alert:?})")
        }
        rustls::Error::InvalidMessage(m) => {
            format!("the peer does not speak TLS (it may be a plain distribution node): {m:?}")
        }
        other => format!("TLS failed: {other}"),
    }
}

/// The server name to verify a peer node's certificate against: the host
/// part of its node name.
pub(crate) fn server_name(node: &str) -> Result<ServerName<'static>, String> {
    let host = node.split_once('@').map_or(node, |(_, h)| h);
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("the host {host:?} cannot be verified: {e}"))
}

/// What a connection's TLS halves share: the TLS state, and the socket's
/// writing half (the reader writes what TLS must answer by itself).
pub(crate) struct Shared {
    tls: Mutex<rustls::Connection>,
    tcp: OwnedWriteHalf,
}

impl Shared {
    /// Writes encrypted records the TLS state holds, until it holds none
    /// (`Ok(true)`) or the socket takes no more (`Ok(false)`).
    fn flush(tls: &mut rustls::Connection, tcp: &OwnedWriteHalf) -> io::Result<bool> {
        while tls.wants_write() {
            match tls.write_tls(&mut TryWrite(tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// A socket half as `std::io::Write`, without blocking.
struct TryWrite<'a>(&'a OwnedWriteHalf);

impl Write for TryWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writing half of a TLS connection.
pub(crate) struct TlsWriter(Arc<Shared>);

impl TlsWriter {
    /// Encrypts what it can of `write`'s bytes and writes what the socket
    /// takes now; returns how many plaintext bytes were taken. Encrypted
    /// records waiting from before go first: while they cannot, nothing is
    /// taken (`WouldBlock`).
    pub(crate) fn write_with(
        &self,
        write: impl FnOnce(&mut rustls::Writer<'_>) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut tls = self.0.tls.lock();
        if !Shared::flush(&mut tls, &self.0.tcp)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = write(&mut tls.writer())?;
        // What the socket does not take now waits in the TLS state; the
        // next write, or the writer task, sends it.
        Shared::flush(&mut tls, &self.0.tcp)?;
        Ok(n)
    }

    /// Writes encrypted records still waiting: `Ok(true)` when none are
    /// left.
    pub(crate) fn finish(&self) -> io::Result<bool> {
        let mut tls = self.0.tls.lock();
        Shared::flush(&mut tls, &self.0.tcp)
    }

    /// Waits until the socket takes bytes.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.0.tcp.writable().await
    }
}

/// The reading half of a TLS connection: ciphertext from the socket,
/// plaintext out.
pub(crate) struct TlsReader {
    shared: Arc<Shared>,
    /// Has the writer task finish writing records this half queued.
    kick: Box<dyn Fn() + Send + Sync>,
    tcp: OwnedReadHalf,
    /// Ciphertext read and not yet handed to TLS: `raw[at..len]`.
    raw: Box<[u8]>,
    at: usize,
    len: usize,
}

/// Reads this much ciphertext at a time.
const RAW_CHUNK: usize = 64 * 1024;

impl AsyncRead for TlsReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            {
                let mut tls = this.shared.tls.lock();
                match take_plaintext(&mut tls, buf) {
                    Ok(()) => return Poll::Ready(Ok(())),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
                if this.at < this.len {
                    let mut rest = &this.raw[this.at..this.len];
                    let n = tls.read_tls(&mut rest)?;
                    this.at += n;
                    tls.process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    // Anything TLS answers by itself (a key update, an
                    // alert) goes out now if the socket takes it, or with
                    // the next write.
                    if tls.wants_write() && !Shared::flush(&mut tls, &this.shared.tcp)? {
                        // The socket is full: the writer task finishes.
                        (this.kick)();
                    }
                    continue;
                }
            }
            let mut rb = ReadBuf::new(&mut this.raw);
            ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                // The socket closed: a peer that ends without TLS's
                // close_notify is an unexpected end.
                let mut tls = this.shared.tls.lock();
                let _ = tls.read_tls(&mut &[][..]);
                let _ = tls.process_new_packets();
                return match take_plaintext(&mut tls, buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Ready(Ok(())),
                    done => Poll::Ready(done),
                };
            }
            this.at = 0;
            this.len = n;
        }
    }
}

/// Copies decrypted bytes into `buf`, as many as it has room for and TLS
/// holds: `WouldBlock` when TLS holds none yet, `Ok` with nothing copied
/// at the end of the stream. (Copied from TLS's own buffer, so that the
/// caller's buffer is never zeroed first: a 1 MB read would zero the whole
/// megabyte for each 16 kB record.)
fn take_plaintext(tls: &mut rustls::Connection, buf: &mut ReadBuf<'_>) -> io::Result<()> {
    let mut reader = tls.reader();
    let start = buf.filled().len();
    while buf.remaining() > 0 {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            // Some bytes copied already: those first.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && buf.filled().len() > start => break,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len().min(buf.remaining());
        buf.put_slice(&chunk[..n]);
        reader.consume(n);
    }
    Ok(())
}

/// Splits a TLS connection, its handshakes done, into its halves.
pub(crate) fn split(
    tcp: TcpStream,
    tls: rustls::Connection,
    kick: Box<dyn Fn() + Send + Sync>,
) -> (TlsReader, TlsWriter) {
    let (rd, wr) = tcp.into_split();
    let shared = Arc::new(Shared {
        tls: Mutex::new(tls),
        tcp: wr,
    });
    (
        TlsReader {
            shared: shared.clone(),
            kick,
            tcp: rd,
            raw: vec![0; RAW_CHUNK].into_boxed_slice(),
            at: 0,
            len: 0,
        },
        TlsWriter(shared),
    )
}
