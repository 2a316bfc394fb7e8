use ergo::Term;

#[derive(Term)]
#[term(transparent)]
struct Id(u64, u64);

fn main() {}
