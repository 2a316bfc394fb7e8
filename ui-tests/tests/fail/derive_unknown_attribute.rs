use ergo::Term;

#[derive(Term)]
#[term(recrod)]
struct Point {
    x: i64,
}

fn main() {}
