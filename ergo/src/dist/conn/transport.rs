//! What a connection runs on once both handshakes are done: a plain TCP
//! socket, or TLS over one. Both halves hide which.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::dist::codec::wire::OutBuf;
use crate::dist::tls::{self, TlsReader, TlsWriter};

/// A connection's socket, its handshakes done.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(TcpStream, Box<rustls::Connection>),
}

impl Stream {
    /// The same stream, its socket registered with `runtime`'s I/O driver
    /// (a connection accepted on the handshake thread moves to the node's
    /// runtime once the peer is known).
    pub(crate) fn rehome(self, runtime: &tokio::runtime::Handle) -> std::io::Result<Stream> {
        let move_socket = |s: TcpStream| -> std::io::Result<TcpStream> {
            let std = s.into_std()?;
            let _entered = runtime.enter();
            TcpStream::from_std(std)
        };
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(move_socket(s)?),
            Stream::Tls(s, c) => Stream::Tls(move_socket(s)?, c),
        })
    }

    /// The halves; `kick` has the writer task write what the transport
    /// holds (called by a TLS reader that queued records of its own).
    pub(crate) fn split(self, kick: Box<dyn Fn() + Send + Sync>) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(s) => {
                drop(kick);
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Stream::Tls(s, c) => {
                let (r, w) = tls::split(s, *c, kick);
                (ReadHalf::Tls(Box::new(r)), WriteHalf::Tls(w))
            }
        }
    }
}

/// The half that senders and the writer task write to.
pub(crate) enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Tls(TlsWriter),
}

impl WriteHalf {
    /// One non-blocking write of what `out` holds next (vectored when it
    /// refers to large binaries); the bytes taken.
    pub(crate) fn write_some(&self, out: &OutBuf) -> io::Result<usize> {
        match self {
            WriteHalf::Tcp(half) => {
                out.write_with(|b| half.try_write(b), |s| half.try_write_vectored(s))
            }
            WriteHalf::Tls(half) => half.write_with(|w| {
                // One of the two is called.
                let w = std::cell::RefCell::new(w);
                out.write_with(
                    |b| io::Write::write(&mut *w.borrow_mut(), b),
                    |s| io::Write::write_vectored(&mut *w.borrow_mut(), s),
                )
            }),
        }
    }

    /// Writes what was taken and is still held (TLS records): `Ok(true)`
    /// when nothing is left, `Ok(false)` when the socket takes no more now.
    pub(crate) fn finish(&self) -> io::Result<bool> {
        match self {
            WriteHalf::Tcp(_) => Ok(true),
            WriteHalf::Tls(half) => half.finish(),
        }
    }

    /// Waits until the socket takes bytes.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        match self {
            WriteHalf::Tcp(half) => half.writable().await,
            WriteHalf::Tls(half) => half.writable().await,
        }
    }
}

/// The half the reader task reads.
pub(crate) enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(Box<TlsReader>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Tls(r) => Pin::new(&mut **r).poll_read(cx, buf),
        }
    }
}
