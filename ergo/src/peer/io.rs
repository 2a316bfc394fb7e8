//! I/O requests from a peer (Erlang's I/O protocol, as a group leader
//! answers them): the text they write goes to the origin's output, reads
//! get `eof` (a peer's console has no keyboard here).

use ergo_etf::Term;

use super::Output;
use super::io_format;

/// Prints `text` through `output`, or on this program's standard output
/// (ignoring a closed one: a peer's output must never take the origin down).
pub(crate) fn emit(output: &Option<Output>, text: &str) {
    if text.is_empty() {
        return;
    }
    match output {
        Some(f) => f(text),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

fn error(why: &str) -> Term {
    Term::tuple([Term::atom("error"), Term::atom(why)])
}

/// The reply to the I/O request `req`, adding what it writes to `out`.
pub(crate) fn answer(req: &Term, out: &mut String) -> Term {
    let Term::Tuple(t) = req else {
        return match req {
            Term::Atom(a) if a.as_str() == "getopts" => Term::List(vec![
                Term::tuple([Term::atom("binary"), Term::atom("false")]),
                Term::tuple([Term::atom("encoding"), Term::atom("unicode")]),
            ]),
            _ => error("request"),
        };
    };
    let tag = match t.first() {
        Some(Term::Atom(a)) => a.as_str(),
        _ => return error("request"),
    };
    match (tag, t.len()) {
        // {put_chars, Encoding, Chars} and the older {put_chars, Chars}.
        ("put_chars", 3) | ("put_chars", 2) => match io_format::chardata(&t[t.len() - 1]) {
            Some(s) => {
                out.push_str(&s);
                Term::atom("ok")
            }
            None => error("put_chars"),
        },
        // {put_chars, Encoding, M, F, A} and {put_chars, M, F, A}: only
        // io_lib's formatting can run here.
        ("put_chars", 5) | ("put_chars", 4) => {
            let n = t.len();
            let (m, f, a) = (&t[n - 3], &t[n - 2], &t[n - 1]);
            let formatting = m.is_atom("io_lib") && (f.is_atom("format") || f.is_atom("fwrite"));
            match a {
                Term::List(args) if formatting && args.len() == 2 => {
                    match io_format::format(&args[0], &args[1]) {
                        Ok(s) => {
                            out.push_str(&s);
                            Term::atom("ok")
                        }
                        Err(_) => error("format"),
                    }
                }
                _ => error("request"),
            }
        }
        ("requests", 2) => match &t[1] {
            Term::List(reqs) => {
                let mut last = Term::atom("ok");
                for r in reqs {
                    last = answer(r, out);
                    if matches!(&last, Term::Tuple(e) if e.first().is_some_and(|x| x.is_atom("error")))
                    {
                        break;
                    }
                }
                last
            }
            _ => error("request"),
        },
        ("get_chars" | "get_line" | "get_until" | "get_password", _) => Term::atom("eof"),
        ("setopts", 2) => Term::atom("ok"),
        ("get_geometry", 2) => error("enotsup"),
        _ => error("request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(t: Term) -> (Term, String) {
        let mut out = String::new();
        let r = answer(&t, &mut out);
        (r, out)
    }

    #[test]
    fn put_chars_of_binaries_and_charlists_prints_them() {
        let (r, out) = put(Term::tuple([
            Term::atom("put_chars"),
            Term::atom("unicode"),
            Term::binary("héllo\n"),
        ]));
        assert_eq!((r, out.as_str()), (Term::atom("ok"), "héllo\n"));
        let (r, out) = put(Term::tuple([
            Term::atom("put_chars"),
            Term::charlist("old form"),
        ]));
        assert_eq!((r, out.as_str()), (Term::atom("ok"), "old form"));
    }

    #[test]
    fn io_format_requests_are_formatted_here() {
        let (r, out) = put(Term::tuple([
            Term::atom("put_chars"),
            Term::atom("unicode"),
            Term::atom("io_lib"),
            Term::atom("format"),
            Term::List(vec![
                Term::charlist("~p and ~w~n"),
                Term::List(vec![Term::atom("a"), Term::Int(5)]),
            ]),
        ]));
        assert_eq!((r, out.as_str()), (Term::atom("ok"), "a and 5\n"));
    }

    #[test]
    fn a_request_list_runs_in_order_and_reads_get_eof() {
        let req = |s: &str| {
            Term::tuple([
                Term::atom("put_chars"),
                Term::atom("unicode"),
                Term::binary(s),
            ])
        };
        let (r, out) = put(Term::tuple([
            Term::atom("requests"),
            Term::List(vec![req("a"), req("b")]),
        ]));
        assert_eq!((r, out.as_str()), (Term::atom("ok"), "ab"));
        let (r, _) = put(Term::tuple([
            Term::atom("get_line"),
            Term::atom("unicode"),
            Term::charlist("> "),
        ]));
        assert_eq!(r, Term::atom("eof"));
    }

    #[test]
    fn other_requests_are_refused_as_a_group_leader_refuses_them() {
        let (r, _) = put(Term::tuple([Term::atom("nonsense"), Term::Int(1)]));
        assert_eq!(r, error("request"));
        let (r, _) = put(Term::tuple([
            Term::atom("put_chars"),
            Term::atom("unicode"),
            Term::atom("m"),
            Term::atom("f"),
            Term::NIL,
        ]));
        assert_eq!(r, error("request"));
    }
}
