//! The two framings of the control connection between an origin and its
//! peer, as OTP's `peer` writes them:
//!
//! - over TCP, each term is `term_to_binary` behind a 4-byte big-endian
//!   length (`{packet, 4}`);
//! - over standard I/O, the peer's output mixes console text with frames.
//!   A frame is `<<Size:32, Payload:Size/binary, Crc32:32>>` with every
//!   byte split into two nibbles, each sent as a byte `2#11NNNN11` (192 to
//!   255). Every other byte is console output, passed through as it is.

use ergo_etf::Term;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest control frame either side accepts by default (64 MiB): a
/// call's arguments or reply, or a console line.
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// Whether `b` carries a nibble of a standard-I/O frame.
fn is_nibble(b: u8) -> bool {
    b & 0b1100_0011 == 0b1100_0011
}

/// A term as a standard-I/O frame: length, payload and CRC-32, each byte as
/// two control bytes.
pub(crate) fn encode_stdio(term: &Term) -> Vec<u8> {
    let payload = ergo_etf::encode(term);
    let mut whole = Vec::with_capacity(payload.len() + 8);
    whole.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    whole.extend_from_slice(&payload);
    whole.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    let mut out = Vec::with_capacity(whole.len() * 2);
    for b in whole {
        out.push(0b1100_0011 | ((b >> 4) << 2));
        out.push(0b1100_0011 | ((b & 0xf) << 2));
    }
    out
}

/// Why the control connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A frame states a size over the limit.
    TooLarge(usize),
    /// A standard-I/O frame's checksum does not match its payload.
    BadChecksum,
    /// The payload is not a term.
    BadTerm(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge(n) => write!(
                f,
                "a control frame of {n} bytes is over the limit of {MAX_FRAME}"
            ),
            FrameError::BadChecksum => write!(f, "a control frame's CRC-32 does not match"),
            FrameError::BadTerm(e) => write!(f, "a control frame is not a term: {e}"),
        }
    }
}

/// What a chunk of standard-I/O output held.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Chunk {
    /// The console output, in order.
    pub(crate) console: Vec<u8>,
    /// The terms of the frames completed, in order.
    pub(crate) terms: Vec<Term>,
}

/// Takes console output and frames apart from a standard-I/O stream, one
/// chunk at a time (a frame may span chunks).
#[derive(Debug, Default)]
pub(crate) struct StdioDecoder {
    /// The first nibble of a byte not yet whole.
    high: Option<u8>,
    /// The frame's bytes so far.
    frame: Vec<u8>,
}

impl StdioDecoder {
    /// Reads `input`; an error ends the stream (the checksum failed or the
    /// frame is too large), as OTP's `peer` stops on one.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Result<Chunk, FrameError> {
        let mut chunk = Chunk::default();
        for &b in input {
            if !is_nibble(b) {
                chunk.console.push(b);
                continue;
            }
            let n = (b >> 2) & 0xf;
            match self.high.take() {
                None => self.high = Some(n),
                Some(h) => {
                    self.frame.push((h << 4) | n);
                    if let Some(term) = self.complete()? {
                        chunk.terms.push(term);
                    }
                }
            }
        }
        Ok(chunk)
    }

    /// The frame's term once all its bytes have come.
    fn complete(&mut self) -> Result<Option<Term>, FrameError> {
        if self.frame.len() < 4 {
            return Ok(None);
        }
        let size = u32::from_be_bytes(self.frame[..4].try_into().unwrap_or_default()) as usize;
        if size > MAX_FRAME {
            return Err(FrameError::TooLarge(size));
        }
        if self.frame.len() < size + 8 {
            return Ok(None);
        }
        let payload = &self.frame[4..4 + size];
        let crc = u32::from_be_bytes(self.frame[4 + size..].try_into().unwrap_or_default());
        if crc != crc32fast::hash(payload) {
            return Err(FrameError::BadChecksum);
        }
        let term = ergo_etf::decode(payload).map_err(|e| FrameError::BadTerm(e.to_string()));
        self.frame.clear();
        term.map(Some)
    }
}

/// Takes the whole `{packet, 4}` frames off the front of `pending` and
/// gives their terms; a partial frame stays for the next read.
pub(crate) fn split_packets(pending: &mut Vec<u8>) -> Result<Vec<Term>, FrameError> {
    let mut terms = Vec::new();
    let mut at = 0;
    while pending.len() - at >= 4 {
        let size = u32::from_be_bytes(pending[at..at + 4].try_into().unwrap_or_default()) as usize;
        if size > MAX_FRAME {
            return Err(FrameError::TooLarge(size));
        }
        if pending.len() - at < 4 + size {
            break;
        }
        let payload = &pending[at + 4..at + 4 + size];
        terms.push(ergo_etf::decode(payload).map_err(|e| FrameError::BadTerm(e.to_string()))?);
        at += 4 + size;
    }
    pending.drain(..at);
    Ok(terms)
}

/// Appends `term` to `out` as a `{packet, 4}` frame.
pub(crate) fn encode_packet(term: &Term, out: &mut Vec<u8>) {
    let payload = ergo_etf::encode(term);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
}

/// Reads one `{packet, 4}` frame's term; `Ok(None)` at the end of the
/// stream.
pub(crate) async fn read_packet<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Term>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = u32::from_be_bytes(len) as usize;
    if size > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            FrameError::TooLarge(size).to_string(),
        ));
    }
    let mut payload = vec![0u8; size];
    r.read_exact(&mut payload).await?;
    ergo_etf::decode(&payload).map(Some).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            FrameError::BadTerm(e.to_string()).to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Term {
        Term::tuple([
            Term::atom("call"),
            Term::Int(7),
            Term::atom("erlang"),
            Term::atom("node"),
            Term::NIL,
        ])
    }

    #[test]
    fn a_stdio_frame_is_made_of_control_bytes_only_and_decodes_back() {
        let bytes = encode_stdio(&sample());
        assert!(bytes.iter().all(|&b| b >= 192 && is_nibble(b)));
        let mut d = StdioDecoder::default();
        let chunk = d.feed(&bytes).unwrap();
        assert_eq!(chunk.terms, vec![sample()]);
        assert!(chunk.console.is_empty());
    }

    #[test]
    fn console_text_between_and_inside_frames_is_passed_through_in_order() {
        let frame = encode_stdio(&sample());
        let mut input = b"hello ".to_vec();
        input.extend_from_slice(&frame[..5]);
        input.extend_from_slice(b"wor");
        input.extend_from_slice(&frame[5..]);
        input.extend_from_slice(b"ld\n");
        let mut d = StdioDecoder::default();
        // Fed a byte at a time: frames span chunks.
        let mut console = Vec::new();
        let mut terms = Vec::new();
        for b in input {
            let c = d.feed(&[b]).unwrap();
            console.extend(c.console);
            terms.extend(c.terms);
        }
        assert_eq!(console, b"hello world\n");
        assert_eq!(terms, vec![sample()]);
    }

    #[test]
    fn a_corrupted_frame_fails_its_checksum() {
        let mut bytes = encode_stdio(&sample());
        // Flip one nibble of the payload (after the 4 size bytes).
        bytes[10] ^= 0b0000_0100;
        let err = StdioDecoder::default().feed(&bytes).unwrap_err();
        assert_eq!(err, FrameError::BadChecksum);
    }

    #[test]
    fn a_frame_claiming_more_than_the_limit_is_refused_before_it_is_read() {
        let size = (MAX_FRAME as u32 + 1).to_be_bytes();
        let bytes: Vec<u8> = size
            .iter()
            .flat_map(|b| [0xc3 | ((b >> 4) << 2), 0xc3 | ((b & 0xf) << 2)])
            .collect();
        let err = StdioDecoder::default().feed(&bytes).unwrap_err();
        assert_eq!(err, FrameError::TooLarge(MAX_FRAME + 1));
    }

    #[test]
    fn packets_split_at_frame_ends_keep_a_partial_one_and_refuse_a_huge_one() {
        let mut bytes = Vec::new();
        encode_packet(&sample(), &mut bytes);
        encode_packet(&sample(), &mut bytes);
        let whole = bytes.len();
        let mut pending = bytes[..whole - 3].to_vec();
        assert_eq!(split_packets(&mut pending).unwrap(), vec![sample()]);
        pending.extend_from_slice(&bytes[whole - 3..]);
        assert_eq!(split_packets(&mut pending).unwrap(), vec![sample()]);
        assert!(pending.is_empty());
        let mut huge = (MAX_FRAME as u32 + 1).to_be_bytes().to_vec();
        assert_eq!(
            split_packets(&mut huge),
            Err(FrameError::TooLarge(MAX_FRAME + 1))
        );
    }

    #[tokio::test]
    async fn packet_frames_round_trip_and_end_cleanly() {
        use tokio::io::AsyncWriteExt;
        let (mut a, mut b) = tokio::io::duplex(1024);
        let mut bytes = Vec::new();
        encode_packet(&sample(), &mut bytes);
        a.write_all(&bytes).await.unwrap();
        drop(a);
        assert_eq!(read_packet(&mut b).await.unwrap(), Some(sample()));
        assert_eq!(read_packet(&mut b).await.unwrap(), None);
    }
}
