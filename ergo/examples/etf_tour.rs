//! A tour of ergo's Erlang term format: typed values, dynamic terms, and the
//! exact bytes Erlang writes.
//!
//! ```text
//! cargo run --example etf_tour
//! ```

use ergo::etf::{DecodeOptions, Term, decode, decode_as, encode};
use ergo::{FromTerm, Term as DeriveTerm, ToTerm};

/// A GenServer request, as an Erlang peer would send it.
#[derive(DeriveTerm, Debug, PartialEq)]
enum Request {
    /// `get`
    Get,
    /// `{add, N}`
    Add(i64),
    /// `{rename, #{from => .., to => ..}}`
    Rename { from: String, to: String },
}

/// An Elixir struct, `%MyApp.User{name: "ann", age: 41}`.
#[derive(DeriveTerm, Debug, PartialEq)]
#[term(elixir_struct = "Elixir.MyApp.User")]
struct User {
    name: String,
    age: u32,
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn main() {
    // Typed values become the terms an Erlang programmer expects.
    let requests = [
        Request::Get,
        Request::Add(5),
        Request::Rename {
            from: "a".into(),
            to: "b".into(),
        },
    ];
    for r in &requests {
        let bytes = encode(r);
        println!(
            "{r:?}\n  as Erlang: {}\n  bytes:     <<{}>>",
            r.to_term(),
            hex(&bytes)
        );
        assert_eq!(&decode_as::<Request>(&bytes).unwrap(), r);
    }

    let user = User {
        name: "ann".into(),
        age: 41,
    };
    println!(
        "\n{user:?}\n  is the Elixir struct %MyApp.User{{}}, in Erlang's syntax: {}",
        user.to_term()
    );

    // Bytes from Erlang (term_to_binary({ok, 42, <<"hello">>})) decode into
    // a dynamic Term, print in Erlang syntax, and re-encode to the same bytes.
    let from_erlang = [
        131, 104, 3, 100, 0, 2, 111, 107, 97, 42, 109, 0, 0, 0, 5, 104, 101, 108, 108, 111,
    ];
    let t = decode(&from_erlang).unwrap();
    println!("\nterm_to_binary bytes decode to {t}");
    assert_eq!(encode(&t), from_erlang);
    println!("  and encode back to the very same bytes");

    // A term of the wrong shape is refused with an error that says why.
    let wrong = Term::tuple([Term::atom("add"), Term::binary("x")]);
    match Request::from_term(&wrong) {
        Ok(r) => println!("unexpectedly decoded {r:?}"),
        Err(e) => println!("\n{wrong} is refused: {e}"),
    }

    // Untrusted input: safe mode refuses atoms that do not exist yet.
    let mut sneaky = vec![131, 119, 20];
    sneaky.extend_from_slice(b"atom_nobody_made_yet");
    match DecodeOptions::new().safe(true).decode(&sneaky) {
        Ok(t) => println!("decoded {t}"),
        Err(e) => println!("binary_to_term(Bytes, [safe]) is refused: {e}"),
    }
}
