use ergo::Term;

#[derive(Term)]
#[term(record)]
struct Point {
    x: i64,
    #[term(default)]
    y: i64,
}

fn main() {}
