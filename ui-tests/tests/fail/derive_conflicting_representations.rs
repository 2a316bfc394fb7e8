use ergo::Term;

#[derive(Term)]
#[term(record, proplist)]
struct Point {
    x: i64,
}

fn main() {}
