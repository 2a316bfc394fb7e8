use ergo::Term;

#[derive(Term)]
struct User {
    name: String,
    #[term(rename = "name")]
    nickname: String,
}

fn main() {}
