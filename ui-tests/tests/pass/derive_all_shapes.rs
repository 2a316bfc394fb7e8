use ergo::{Term, ToTerm};

#[derive(Term)]
struct Map {
    a: i64,
}

#[derive(Term)]
#[term(record)]
struct Rec {
    a: i64,
}

#[derive(Term)]
#[term(proplist)]
struct Props {
    #[term(default)]
    a: i64,
}

#[derive(Term)]
#[term(elixir_struct = "Elixir.A.B")]
struct Ex {
    a: i64,
}

#[derive(Term)]
#[term(transparent)]
struct Id(u64);

#[derive(Term)]
enum E<T> {
    A,
    B(T),
    C { x: T },
}

fn main() {
    let _ = (Map { a: 1 }).to_term();
    let _ = (Rec { a: 1 }).to_term();
    let _ = (Props { a: 1 }).to_term();
    let _ = (Ex { a: 1 }).to_term();
    let _ = Id(1).to_term();
    let _ = E::<u8>::B(1).to_term();
}
