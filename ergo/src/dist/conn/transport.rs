//! What a connection runs on once both handshakes are done: a plain TCP
//! socket, or TLS over one. Both halves hide which.
//!
//! On Linux a plain TCP socket is read and written with non-blocking
//! system calls of this module's own, and is registered with the runtime's
//! I/O driver only while one of its halves waits for it: a reader that
//! busy-polls its socket (see [`crate::dist::DistOptions::busy_poll`]) takes
//! it off the driver meanwhile. Registered, every packet that arrives wakes
//! whichever idle worker thread sits in the driver's `epoll_wait`, only to
//! find that the spinning reader already has the data (and, marking the
//! reader to be polled again, to move it to the other thread): with an
//! Erlang node calling a Rust `echo` from 120 processes on two cores, such a
//! spin made 44–49k calls/s, this one 79–83k.

use std::io;
use std::task::{Context, Poll};

#[cfg(target_os = "linux")]
use raw::{TcpRead, TcpWrite};
use tokio::io::AsyncRead;
use tokio::net::TcpStream;
#[cfg(not(target_os = "linux"))]
use tokio::net::tcp::{OwnedReadHalf as TcpRead, OwnedWriteHalf as TcpWrite};

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
                #[cfg(target_os = "linux")]
                let (r, w) = raw::split(s);
                #[cfg(not(target_os = "linux"))]
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
    Tcp(TcpWrite),
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

/// The process or the system has no file descriptor left (`EMFILE`,
/// `ENFILE`): a wait that needed one may succeed a moment later.
pub(crate) fn out_of_descriptors(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        use rustix::io::Errno;
        matches!(Errno::from_io_error(e), Some(Errno::MFILE | Errno::NFILE))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
    }
}

/// A buffer that a direct read (see [`ReadHalf::read_now`]) receives into.
pub(crate) trait RecvBuf: bytes::BufMut {
    /// One non-blocking `recv` from `fd` into the free space; unless a
    /// buffer knows better, through `scratch`, since free space that may
    /// not be initialized cannot be handed to the kernel without `unsafe`.
    #[cfg(target_os = "linux")]
    fn recv_now(
        &mut self,
        fd: std::os::fd::BorrowedFd<'_>,
        scratch: &mut Vec<u8>,
    ) -> io::Result<usize>
    where
        Self: Sized,
    {
        raw::recv_copied(fd, self, scratch)
    }
}

impl RecvBuf for bytes::BytesMut {}

/// A large frame's own buffer: received into where the bytes stay, when
/// its free space is within the limit (as the reader reserves it), so that
/// a megabyte is not copied once more on its way in.
impl RecvBuf for bytes::buf::Limit<&mut Vec<u8>> {
    #[cfg(target_os = "linux")]
    fn recv_now(
        &mut self,
        fd: std::os::fd::BorrowedFd<'_>,
        scratch: &mut Vec<u8>,
    ) -> io::Result<usize> {
        let limit = self.limit();
        let v = &mut **self.get_mut();
        let spare = v.capacity() - v.len();
        if spare == 0 || spare > limit {
            return raw::recv_copied(fd, self, scratch);
        }
        let (got, _) = rustix::net::recv(
            fd,
            rustix::buffer::spare_capacity(v),
            rustix::net::RecvFlags::DONTWAIT,
        )?;
        self.set_limit(limit - got);
        Ok(got)
    }
}

/// A slice of memory already written (a fragment's place in its
/// message's buffer, made ahead): received into directly.
impl RecvBuf for &mut [u8] {
    #[cfg(target_os = "linux")]
    fn recv_now(
        &mut self,
        fd: std::os::fd::BorrowedFd<'_>,
        _scratch: &mut Vec<u8>,
    ) -> io::Result<usize> {
        if self.is_empty() {
            return Err(raw::no_room());
        }
        let (got, _) = rustix::net::recv(fd, &mut **self, rustix::net::RecvFlags::DONTWAIT)?;
        let rest = std::mem::take(self);
        *self = &mut rest[got..];
        Ok(got)
    }
}

/// The half the reader task reads.
pub(crate) enum ReadHalf {
    Tcp(TcpRead),
    Tls(Box<TlsReader>),
}

impl ReadHalf {
    /// Reads what has arrived into `dst`, or registers the task to be woken
    /// when more does.
    pub(crate) fn poll_read_into<B: RecvBuf>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut B,
    ) -> Poll<io::Result<usize>> {
        match self {
            #[cfg(target_os = "linux")]
            ReadHalf::Tcp(r) => r.poll_read_into(cx, dst),
            #[cfg(not(target_os = "linux"))]
            ReadHalf::Tcp(r) => poll_read_buf(r, cx, dst),
            ReadHalf::Tls(r) => poll_read_buf(&mut **r, cx, dst),
        }
    }

    /// Reads what has arrived into `dst` straight from the socket, without
    /// waiting and without asking the runtime: `None` where the half has no
    /// such read (TLS, or not Linux), `WouldBlock` when nothing has come.
    pub(crate) fn read_now<B: RecvBuf>(&mut self, dst: &mut B) -> Option<io::Result<usize>> {
        match self {
            #[cfg(target_os = "linux")]
            ReadHalf::Tcp(r) => Some(r.read_now(dst)),
            _ => {
                let _ = dst;
                None
            }
        }
    }

    /// Takes the socket off the runtime's I/O driver until the next
    /// [`ReadHalf::poll_read_into`] that finds nothing: for a reader about
    /// to poll it with [`ReadHalf::read_now`].
    pub(crate) fn leave_driver(&mut self) {
        #[cfg(target_os = "linux")]
        if let ReadHalf::Tcp(r) = self {
            r.leave_driver();
        }
    }
}

/// `read_buf` as a poll: reads into `dst`'s free space.
fn poll_read_buf<R: AsyncRead + Unpin, B: bytes::BufMut>(
    r: &mut R,
    cx: &mut Context<'_>,
    dst: &mut B,
) -> Poll<io::Result<usize>> {
    use tokio::io::AsyncReadExt;
    let read = r.read_buf(dst);
    std::pin::pin!(read).poll(cx)
}

/// Plain TCP on Linux: system calls of this module's own, and the driver
/// only while waiting.
#[cfg(target_os = "linux")]
mod raw {
    use std::io;
    use std::task::{Context, Poll};

    use tokio::net::TcpStream;

    use rustix::net::{RecvFlags, SendFlags};

    /// One non-blocking `recv` into `dst` through `scratch` (memory that
    /// may not be initialized cannot be written to safely otherwise).
    pub(super) fn recv_copied<B: bytes::BufMut>(
        fd: std::os::fd::BorrowedFd<'_>,
        dst: &mut B,
        scratch: &mut Vec<u8>,
    ) -> io::Result<usize> {
        if scratch.capacity() == 0 {
            scratch.reserve_exact(super::super::READ_CHUNK);
        }
        let room = dst.remaining_mut().min(scratch.capacity());
        if room == 0 {
            return Err(no_room());
        }
        let spare = &mut scratch.spare_capacity_mut()[..room];
        let ((got, _), _) = rustix::net::recv(fd, spare, RecvFlags::DONTWAIT)?;
        dst.put_slice(got);
        Ok(got.len())
    }

    /// A direct read given nothing to read into: refused, since a receive
    /// of nothing would read as the end of the stream.
    pub(super) fn no_room() -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a direct read with no room to read into",
        )
    }

    /// The halves of `s`, each with its own descriptor of the socket (so
    /// that both may be registered with the driver at once).
    pub(crate) fn split(s: TcpStream) -> (TcpRead, TcpWrite) {
        // Off the driver until a half waits; non-blocking, as the runtime
        // made it.
        // A half that cannot be made fails its reader's first read, which
        // takes the connection down with the error.
        let (socket, wfd) = match s.into_std() {
            Ok(s) => match s.try_clone() {
                Ok(w) => (Socket::Idle(s), Some(w)),
                Err(e) => (Socket::Failed(Some(e)), None),
            },
            Err(e) => (Socket::Failed(Some(e)), None),
        };
        (
            TcpRead {
                socket,
                scratch: Vec::new(),
            },
            TcpWrite { socket: wfd },
        )
    }

    /// A descriptor of the socket, off or on the driver.
    enum Socket {
        Idle(std::net::TcpStream),
        Registered(TcpStream),
        /// Could not be made or moved (the error is reported once).
        Failed(Option<io::Error>),
    }

    impl Socket {
        fn fd(&mut self) -> io::Result<std::os::fd::BorrowedFd<'_>> {
            use std::os::fd::AsFd;
            if let Socket::Failed(e) = self {
                return Err(e
                    .take()
                    .unwrap_or_else(|| io::ErrorKind::NotConnected.into()));
            }
            match &*self {
                Socket::Idle(s) => Ok(s.as_fd()),
                Socket::Registered(s) => Ok(s.as_fd()),
                Socket::Failed(_) => unreachable!("returned above"),
            }
        }

        fn register(&mut self) -> io::Result<&mut TcpStream> {
            if let Socket::Idle(_) = self {
                let Socket::Idle(s) = std::mem::replace(self, Socket::Failed(None)) else {
                    unreachable!("matched above")
                };
                match TcpStream::from_std(s) {
                    Ok(s) => *self = Socket::Registered(s),
                    Err(e) => *self = Socket::Failed(Some(e)),
                }
            }
            match self {
                Socket::Registered(s) => Ok(s),
                Socket::Idle(_) => unreachable!("registered above"),
                Socket::Failed(e) => Err(e
                    .take()
                    .unwrap_or_else(|| io::ErrorKind::NotConnected.into())),
            }
        }

        fn deregister(&mut self) {
            if let Socket::Registered(_) = self {
                let Socket::Registered(s) = std::mem::replace(self, Socket::Failed(None)) else {
                    unreachable!("matched above")
                };
                *self = match s.into_std() {
                    Ok(s) => Socket::Idle(s),
                    Err(e) => Socket::Failed(Some(e)),
                };
            }
        }
    }

    /// The reading half.
    pub(crate) struct TcpRead {
        socket: Socket,
        /// Where a read into memory that may not be initialized lands
        /// first (see [`recv_copied`]).
        scratch: Vec<u8>,
    }

    impl TcpRead {
        /// One non-blocking `recv` into `dst`.
        pub(crate) fn read_now<B: super::RecvBuf>(&mut self, dst: &mut B) -> io::Result<usize> {
            let fd = self.socket.fd()?;
            dst.recv_now(fd, &mut self.scratch)
        }

        pub(crate) fn poll_read_into<B: super::RecvBuf>(
            &mut self,
            cx: &mut Context<'_>,
            dst: &mut B,
        ) -> Poll<io::Result<usize>> {
            // On the driver, ask it first (no system call while it has
            // seen nothing); off it, read directly and register only if
            // nothing has come.
            if !matches!(self.socket, Socket::Registered(_)) {
                match self.read_now(dst) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    done => return Poll::Ready(done),
                }
            }
            match self.socket.register() {
                // Tokio's own read: it also takes a short read to mean the
                // socket is drained, and asks it nothing more until the
                // driver sees more.
                Ok(socket) => super::poll_read_buf(socket, cx, dst),
                Err(e) => Poll::Ready(Err(e)),
            }
        }

        pub(crate) fn leave_driver(&mut self) {
            self.socket.deregister();
        }

        /// Whether a read has gone through the scratch buffer yet.
        #[cfg(test)]
        pub(crate) fn copied(&self) -> bool {
            self.scratch.capacity() > 0
        }
    }

    /// The writing half: `shutdown(SHUT_WR)` when dropped, as tokio's does.
    pub(crate) struct TcpWrite {
        socket: Option<std::net::TcpStream>,
    }

    impl TcpWrite {
        fn socket(&self) -> io::Result<&std::net::TcpStream> {
            self.socket
                .as_ref()
                .ok_or_else(|| io::ErrorKind::NotConnected.into())
        }

        /// One non-blocking `send`.
        pub(crate) fn try_write(&self, b: &[u8]) -> io::Result<usize> {
            Ok(rustix::net::send(
                self.socket()?,
                b,
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            )?)
        }

        /// One non-blocking `sendmsg` of the slices.
        pub(crate) fn try_write_vectored(&self, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
            Ok(rustix::net::sendmsg(
                self.socket()?,
                slices,
                &mut rustix::net::SendAncillaryBuffer::default(),
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            )?)
        }

        /// Waits until the socket takes bytes, registered with the driver
        /// meanwhile (through a descriptor of its own).
        pub(crate) async fn writable(&self) -> io::Result<()> {
            let waiting = TcpStream::from_std(self.socket()?.try_clone()?)?;
            waiting.writable().await
        }
    }

    impl Drop for TcpWrite {
        fn drop(&mut self) {
            if let Some(s) = &self.socket {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A connected pair on 127.0.0.1: ours split into halves, and the peer.
    async fn pair() -> (ReadHalf, WriteHalf, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap());
        let (ours, peer) = tokio::join!(ours, listener.accept());
        let (rd, wr) = Stream::Tcp(ours.unwrap()).split(Box::new(|| {}));
        (rd, wr, peer.unwrap().0)
    }

    async fn woken(wakes: &Wakes, more_than: usize) -> bool {
        for _ in 0..200 {
            if wakes.0.load(Ordering::SeqCst) > more_than {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_tcp_read_half_off_the_driver_is_read_directly_and_registers_again_to_wait() {
        let (mut rd, _wr, mut peer) = pair().await;
        let wakes = Arc::new(Wakes::default());
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut buf = bytes::BytesMut::with_capacity(64);
        // Waiting, it is on the driver, which wakes it when data comes.
        assert!(rd.poll_read_into(&mut cx, &mut buf).is_pending());
        peer.write_all(b"one").await.unwrap();
        assert!(woken(&wakes, 0).await, "woken by the driver");
        assert!(matches!(
            rd.poll_read_into(&mut cx, &mut buf),
            Poll::Ready(Ok(3))
        ));
        assert_eq!(&buf[..], b"one");
        // Off the driver, what comes wakes no one, not even a reader that
        // was waiting: it is read directly.
        assert!(rd.poll_read_into(&mut cx, &mut buf).is_pending());
        rd.leave_driver();
        let seen = wakes.0.load(Ordering::SeqCst);
        peer.write_all(b"two").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            seen,
            "no wake off the driver"
        );
        assert!(matches!(rd.read_now(&mut buf), Some(Ok(3))));
        assert_eq!(&buf[..], b"onetwo");
        match rd.read_now(&mut buf) {
            Some(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            other => panic!("nothing more has come: {other:?}"),
        }
        // Waiting again puts it back on the driver.
        assert!(rd.poll_read_into(&mut cx, &mut buf).is_pending());
        peer.write_all(b"three").await.unwrap();
        assert!(woken(&wakes, seen).await, "woken by the driver again");
        assert!(matches!(
            rd.poll_read_into(&mut cx, &mut buf),
            Poll::Ready(Ok(5))
        ));
        assert_eq!(&buf[..], b"onetwothree");
        // The end of the stream reads as 0.
        drop(peer);
        let n = std::future::poll_fn(|cx| rd.poll_read_into(cx, &mut buf)).await;
        assert_eq!(n.unwrap(), 0);
    }

    /// Reads directly until `want` bytes have come, `read` making each
    /// read (given how many have come so far).
    async fn read_directly(
        rd: &mut ReadHalf,
        want: usize,
        mut read: impl FnMut(&mut ReadHalf, usize) -> Option<io::Result<usize>>,
    ) -> usize {
        let mut got = 0;
        while got < want {
            match read(rd, got) {
                Some(Ok(n)) => got += n,
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::task::yield_now().await
                }
                other => panic!("{other:?}"),
            }
        }
        got
    }

    #[tokio::test]
    async fn a_direct_read_lands_a_large_frame_in_its_own_buffer_and_keeps_to_the_limit() {
        use bytes::BufMut;
        let (mut rd, _wr, mut peer) = pair().await;
        rd.leave_driver();
        let sent: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        peer.write_all(&sent).await.unwrap();
        let copied = |rd: &ReadHalf| match rd {
            ReadHalf::Tcp(r) => r.copied(),
            ReadHalf::Tls(_) => unreachable!("a plain TCP half"),
        };
        // A frame's buffer reserved for exactly what is left of it: read
        // into where the bytes stay, and the vector never moved.
        let mut frame: Vec<u8> = Vec::with_capacity(150_000);
        let at = frame.as_ptr();
        let got = read_directly(&mut rd, 150_000, |rd, got| {
            rd.read_now(&mut (&mut frame).limit(150_000 - got))
        })
        .await;
        assert_eq!((got, frame.as_ptr()), (150_000, at));
        assert_eq!(frame, sent[..150_000]);
        assert!(!copied(&rd), "received in place, not through the scratch");
        // Free space beyond the limit: no more than the limit is taken.
        let mut tail: Vec<u8> = Vec::with_capacity(100_000);
        read_directly(&mut rd, 10, |rd, got| {
            rd.read_now(&mut (&mut tail).limit(10 - got))
        })
        .await;
        assert_eq!(tail, sent[150_000..150_010]);
        assert!(copied(&rd), "through the scratch, to keep to the limit");
        let mut rest = bytes::BytesMut::new();
        read_directly(&mut rd, 49_990, |rd, _| rd.read_now(&mut rest)).await;
        assert_eq!(&rest[..], &sent[150_010..]);
    }

    #[tokio::test]
    async fn a_direct_read_into_a_fragments_place_lands_there_and_keeps_to_the_slice() {
        let (mut rd, _wr, mut peer) = pair().await;
        rd.leave_driver();
        let sent: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        peer.write_all(&sent).await.unwrap();
        // A message's buffer made ahead: a fragment's place within it.
        let mut body = vec![0u8; 120_000];
        let got = read_directly(&mut rd, 80_000, |rd, got| {
            rd.read_now(&mut &mut body[10_000 + got..90_000])
        })
        .await;
        assert_eq!(got, 80_000, "no more than the slice");
        assert_eq!(&body[10_000..90_000], &sent[..80_000]);
        assert!(
            body[..10_000]
                .iter()
                .chain(&body[90_000..])
                .all(|&b| b == 0)
        );
        let ReadHalf::Tcp(r) = &rd else {
            panic!("a plain TCP half")
        };
        assert!(!r.copied(), "received in place, not through the scratch");
        let empty: &mut [u8] = &mut [];
        let err = rd.read_now(&mut &mut *empty).expect("a direct read");
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn a_tcp_write_half_waits_for_room_and_ends_the_stream_when_dropped() {
        let (_rd, wr, mut peer) = pair().await;
        let WriteHalf::Tcp(raw) = &wr else {
            panic!("a plain TCP half")
        };
        // Fill the socket until it takes no more.
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            match raw.try_write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let full = tokio::time::timeout(Duration::from_millis(100), wr.writable()).await;
        assert!(full.is_err(), "no room yet");
        // Once the peer reads, there is room again.
        let reading = tokio::spawn(async move {
            let mut got = vec![0u8; sent];
            peer.read_exact(&mut got).await.unwrap();
            assert!(got.iter().all(|&b| b == 7));
            peer
        });
        tokio::time::timeout(Duration::from_secs(10), wr.writable())
            .await
            .expect("room once the peer read")
            .unwrap();
        let slices = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cd")];
        assert_eq!(raw.try_write_vectored(&slices).unwrap(), 4);
        let mut peer = reading.await.unwrap();
        // Dropped, the half ends the stream (the read half still open).
        drop(wr);
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), peer.read_to_end(&mut rest))
            .await
            .expect("the stream ended")
            .unwrap();
        assert_eq!(rest, b"abcd");
    }
}
