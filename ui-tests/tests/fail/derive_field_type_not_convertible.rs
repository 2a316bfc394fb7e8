use ergo::Term;

struct NotATerm;

#[derive(Term)]
struct Holder {
    inner: NotATerm,
}

fn main() {}
