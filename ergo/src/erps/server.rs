//! Erps servers: a daemon whose every connection speaks Erps, run by an
//! [`ErpsServer`] (`Erps.Server`'s callbacks: `handle_call`,
//! `handle_cast`, `handle_info`, and pushes to the client).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use ergo_etf::{FromTerm, Term, ToTerm};

use super::packet::{
    DecodeOptions, EncodeOptions, Keyring, Packet, PacketReader, PacketType, VersionReq,
    encode_with,
};
use crate::gen_server::{Flow, Reply, ServerContext};
use crate::message::Message;
use crate::net::{ConnContext, Connection, DaemonSpec, Handler, WriteError};
use crate::reason::Reason;

/// A connection's context on an Erps server.
pub type ErpsContext<S> = ConnContext<ErpsConnection<S>>;

/// What serves an Erps connection.
pub trait ErpsServer: Send + Sized + 'static {
    /// The data every connection starts with.
    type Args: Clone + Send + Sync + 'static;
    /// The calls clients make.
    type Call: FromTerm + Send + 'static;
    /// The replies.
    type Reply: ToTerm + Send + 'static;
    /// The casts clients make.
    type Cast: FromTerm + Send + 'static;

    /// Builds the connection's state.
    fn init(
        args: Self::Args,
        peer: SocketAddr,
        ctx: &mut ErpsContext<Self>,
    ) -> impl Future<Output = Result<Self, Reason>> + Send;

    /// Serves a client's call: the reply goes back as a reply packet.
    /// `Reply::Stop` closes the connection (after the reply, if any).
    fn handle_call(
        &mut self,
        request: Self::Call,
        ctx: &mut ErpsContext<Self>,
    ) -> impl Future<Output = Reply<Self::Reply>> + Send;

    /// Serves a client's cast. By default it is ignored.
    fn handle_cast(
        &mut self,
        request: Self::Cast,
        ctx: &mut ErpsContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (request, ctx);
        async { Flow::Continue }
    }

    /// Any message from another process. By default it is logged.
    fn handle_info(
        &mut self,
        message: Message,
        ctx: &mut ErpsContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        tracing::warn!(connection = %ctx.pid(), %message, "unexpected message");
        async { Flow::Continue }
    }
}

/// How an Erps server speaks: its identifier and version, what it accepts,
/// and the keys of signed packets.
#[derive(Clone, Debug)]
pub struct ErpsOptions {
    /// The API identifier written in every packet and, when
    /// `check_identifier`, required of the client's.
    pub identifier: String,
    /// The API version written in every packet.
    pub version: (u8, u8, u8),
    /// Refuse packets of another identifier ("wrong identifier").
    pub check_identifier: bool,
    /// Refuse packets of versions that do not meet this.
    pub versions: Option<String>,
    /// Decode payloads in safe mode (the default, as Erps).
    pub safe: bool,
    /// Keys for signed packets (an ergo extension; Erps refuses them).
    pub keyring: Option<Keyring>,
    /// The largest packet accepted.
    pub max_packet_size: usize,
}

impl Default for ErpsOptions {
    fn default() -> Self {
        ErpsOptions {
            identifier: String::new(),
            version: (0, 0, 0),
            check_identifier: false,
            versions: None,
            safe: true,
            keyring: None,
            max_packet_size: super::packet::DEFAULT_MAX_PACKET_SIZE,
        }
    }
}

impl ErpsOptions {
    pub(crate) fn decode_options(&self) -> DecodeOptions {
        let mut d = DecodeOptions::default().with_safe(self.safe);
        if self.check_identifier {
            d = d.with_identifier(self.identifier.clone());
        }
        if let Some(req) = self.versions.as_deref().and_then(VersionReq::parse) {
            d = d.with_version_req(req);
        }
        if let Some(k) = &self.keyring {
            d.verify = Some(k.verifier());
        }
        d
    }

    /// A packet of ours: our identifier and version.
    pub(crate) fn stamp(&self, p: Packet) -> Packet {
        p.with_identifier(self.identifier.clone())
            .with_version(self.version)
    }
}

/// What an Erps connection starts with: the server's data and options.
pub struct ErpsStart<S: ErpsServer> {
    args: S::Args,
    options: Arc<ErpsOptions>,
}

impl<S: ErpsServer> std::fmt::Debug for ErpsStart<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErpsStart")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S: ErpsServer> Clone for ErpsStart<S> {
    fn clone(&self) -> Self {
        ErpsStart {
            args: self.args.clone(),
            options: self.options.clone(),
        }
    }
}

/// A daemon of Erps connections served by `S`, with `options`; the rest of
/// the daemon's settings (port, TLS, limits) are set on the spec returned.
pub fn daemon<S: ErpsServer>(args: S::Args, options: ErpsOptions) -> DaemonSpec<ErpsConnection<S>> {
    DaemonSpec::new(ErpsStart {
        args,
        options: Arc::new(options),
    })
}

/// The connection handler that speaks Erps and runs `S`.
pub struct ErpsConnection<S: ErpsServer> {
    server: S,
    options: Arc<ErpsOptions>,
    reader: PacketReader,
}

impl<S: ErpsServer> std::fmt::Debug for ErpsConnection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErpsConnection")
            .field("server", &std::any::type_name::<S>())
            .finish_non_exhaustive()
    }
}

impl<S: ErpsServer> ServerContext<Connection<ErpsConnection<S>>> {
    /// Pushes `message` to this connection's client (`Erps.Server.push/2`).
    pub async fn push(&mut self, message: impl ToTerm) -> Result<(), WriteError> {
        let options = self
            .ext_ref::<Arc<ErpsOptions>>()
            .cloned()
            .unwrap_or_default();
        let p = options.stamp(Packet::push(message.to_term()));
        let bytes = encode_with(&p, &sign_options(&options)).map_err(|e| {
            WriteError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                e.to_string(),
            ))
        })?;
        self.write(&bytes).await
    }
}

fn sign_options(_o: &ErpsOptions) -> EncodeOptions {
    EncodeOptions::default()
}

/// The error sent for a call whose request did not convert.
fn bad_request(e: &ergo_etf::ConvertError) -> Term {
    Term::tuple([Term::atom("badarg"), Term::binary(e.to_string())])
}

impl<S: ErpsServer> ErpsConnection<S> {
    async fn send(&mut self, p: Packet, ctx: &mut ErpsContext<S>) -> bool {
        match encode_with(&self.options.stamp(p), &sign_options(&self.options)) {
            Ok(bytes) => ctx.write(&bytes).await.is_ok(),
            Err(e) => {
                tracing::error!(connection = %ctx.pid(), error = %e, "an Erps packet could not be encoded");
                true
            }
        }
    }

    async fn on_packet(&mut self, p: Packet, ctx: &mut ErpsContext<S>) -> Flow {
        match p.kind {
            PacketType::Keepalive => Flow::Continue,
            PacketType::Call => {
                let Term::Tuple(mut v) = p.payload else {
                    let _ = self
                        .send(
                            Packet::error(Term::binary("a call's payload must be {Ref, Request}")),
                            ctx,
                        )
                        .await;
                    return Flow::Continue;
                };
                if v.len() != 2 {
                    let _ = self
                        .send(
                            Packet::error(Term::binary("a call's payload must be {Ref, Request}")),
                            ctx,
                        )
                        .await;
                    return Flow::Continue;
                }
                let request = v.pop().unwrap_or(Term::NIL);
                let reference = v.pop().unwrap_or(Term::NIL);
                let request = match S::Call::from_owned_term(request) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = self
                            .send(Packet::call_error(bad_request(&e), reference), ctx)
                            .await;
                        return Flow::Continue;
                    }
                };
                match self.server.handle_call(request, ctx).await {
                    Reply::Reply(r) => {
                        if !self
                            .send(Packet::reply(r.into_term(), reference), ctx)
                            .await
                        {
                            return Flow::Stop(Reason::Normal);
                        }
                        Flow::Continue
                    }
                    Reply::NoReply => Flow::Continue,
                    Reply::Stop(reason, reply) => {
                        if let Some(r) = reply {
                            let _ = self
                                .send(Packet::reply(r.into_term(), reference), ctx)
                                .await;
                        }
                        Flow::Stop(reason)
                    }
                }
            }
            PacketType::Cast => match S::Cast::from_owned_term(p.payload) {
                Ok(c) => self.server.handle_cast(c, ctx).await,
                Err(e) => {
                    tracing::warn!(connection = %ctx.pid(), error = %e, "refused an Erps cast");
                    Flow::Continue
                }
            },
            other => {
                tracing::warn!(connection = %ctx.pid(), kind = %other, "an Erps client sent a packet only servers send");
                Flow::Continue
            }
        }
    }
}

impl<S: ErpsServer> Handler for ErpsConnection<S> {
    type Args = ErpsStart<S>;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(
        start: ErpsStart<S>,
        peer: SocketAddr,
        ctx: &mut ErpsContext<S>,
    ) -> Result<Self, Reason> {
        let options = start.options.clone();
        ctx.set_ext_extra(options.clone());
        let server = S::init(start.args, peer, ctx).await?;
        Ok(ErpsConnection {
            server,
            reader: PacketReader::with_options(options.max_packet_size, options.decode_options()),
            options,
        })
    }

    async fn handle_data(&mut self, data: Bytes, ctx: &mut ErpsContext<S>) -> Flow {
        self.reader.feed(&data);
        loop {
            match self.reader.next_packet() {
                Ok(None) => return Flow::Continue,
                Ok(Some(p)) => {
                    if let Flow::Stop(r) = self.on_packet(p, ctx).await {
                        return Flow::Stop(r);
                    }
                }
                Err(e) => {
                    if let Some(refusal) = e.refusal() {
                        let _ = self.send(refusal, ctx).await;
                    }
                    if e.is_fatal() {
                        return Flow::Stop(Reason::ShutdownWith(Arc::new(Term::tuple([
                            Term::atom("erps"),
                            Term::binary(e.to_string()),
                        ]))));
                    }
                    tracing::warn!(connection = %ctx.pid(), error = %e, "refused an Erps packet");
                }
            }
        }
    }

    async fn handle_info(&mut self, message: Message, ctx: &mut ErpsContext<S>) -> Flow {
        self.server.handle_info(message, ctx).await
    }
}
