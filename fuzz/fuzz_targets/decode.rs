//! Fuzzes the ETF decoder with arbitrary bytes.
//!
//! Whatever the input, decoding must return (never panic, never hang, never
//! allocate beyond what the input justifies). When it succeeds, the term must
//! survive a round trip: encode it, decode that, and get an equal term; and
//! printing it must work. Typed decoders must agree with the generic one.

#![no_main]

use ergo::Term as DeriveTerm;
use ergo_etf::{decode, decode_as, encode, DecodeOptions, Decoder, FromTerm, Term};
use libfuzzer_sys::fuzz_target;

#[derive(DeriveTerm, Debug, PartialEq)]
enum Msg {
    Ping,
    Add(i64),
    Put { key: String, value: Vec<u8> },
    #[term(record)]
    Batch { items: Vec<Msg>, ok: Result<(), String> },
}

fuzz_target!(|data: &[u8]| {
    // Safe mode must never add atoms, whatever the input says.
    let _ = DecodeOptions::new().safe(true).decode(data);

    if let Ok(term) = decode(data) {
        let bytes = encode(&term);
        let again = decode(&bytes).expect("re-encoded term decodes");
        assert_eq!(again, term, "round trip changed the term");
        let _ = term.to_string();
        // The typed decoder agrees with converting the generic term.
        let typed = decode_as::<Msg>(data).ok();
        let via_term = Msg::from_term(&term).ok();
        assert_eq!(typed, via_term, "typed decode and from_term disagree");
    }

    // Skipping a term consumes exactly what reading it would.
    if data.len() > 1 {
        let opts = DecodeOptions::new().safe(true);
        let mut a = Decoder::new(&data[1..], &opts);
        let mut b = Decoder::new(&data[1..], &opts);
        if let (Ok(_), Ok(())) = (a.read_term(), b.skip_term()) {
            assert_eq!(a.position(), b.position(), "skip and read end apart");
        }
    }
    let _ = Term::NIL;
});
