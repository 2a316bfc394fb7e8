use ergo::Term;

#[derive(Term)]
enum Msg {
    Add(i64),
    #[term(rename = "add")]
    Plus(i64),
}

fn main() {}
