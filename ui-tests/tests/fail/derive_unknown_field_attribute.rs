use ergo::Term;

#[derive(Term)]
struct User {
    #[term(optional)]
    name: String,
}

fn main() {}
