//! Reads ETF frames from stdin and writes each back re-encoded.
//!
//! Each frame is a 4-byte big-endian length followed by that many bytes of
//! `term_to_binary` output. Every frame is decoded into a `Term` and encoded
//! again; the result goes to stdout in the same framing. A frame that does not
//! decode is answered with a zero-length frame, and the error is printed on
//! stderr; the program keeps going and exits at end of input.
//!
//! Each reply is written out as soon as no more input is waiting, so a
//! program that sends one frame and waits for its answer (an Erlang port
//! opened with `{packet, 4}`, say) gets it at once; a stream of frames is
//! still answered in large writes.
//!
//! ```text
//! cargo run --release --example etf_echo < frames.bin > echoed.bin
//! ```

use std::io::{self, BufReader, BufWriter, Read, Write};

use ergo::etf::{DecodeOptions, encode_into};

/// The largest frame accepted (1 GiB); a longer length is an error, not an
/// allocation.
const MAX_FRAME: usize = 1 << 30;

fn main() -> io::Result<()> {
    let mut input = BufReader::with_capacity(1 << 16, io::stdin().lock());
    let mut output = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let opts = DecodeOptions::new();
    let mut frame = Vec::new();
    let mut reply = Vec::new();
    let mut index = 0u64;
    loop {
        let mut len = [0u8; 4];
        match read_full(&mut input, &mut len)? {
            0 => break,
            4 => {}
            n => {
                eprintln!("frame {index}: input ends inside a length prefix ({n} of 4 bytes)");
                break;
            }
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            eprintln!("frame {index}: length {len} is over the limit of {MAX_FRAME}; stopping");
            output.write_all(&0u32.to_be_bytes())?;
            break;
        }
        frame.clear();
        frame.resize(len, 0);
        let got = read_full(&mut input, &mut frame)?;
        if got < len {
            eprintln!("frame {index}: input ends after {got} of {len} bytes");
            output.write_all(&0u32.to_be_bytes())?;
            break;
        }
        reply.clear();
        match opts.decode(&frame) {
            Ok(term) => encode_into(&term, &mut reply),
            Err(e) => eprintln!("frame {index}: {e}"),
        }
        output.write_all(&(reply.len() as u32).to_be_bytes())?;
        output.write_all(&reply)?;
        index += 1;
        if input.buffer().is_empty() {
            output.flush()?;
        }
    }
    output.flush()
}

/// Reads until `buf` is full or the input ends; returns how many bytes came.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
