use ergo::Term;

#[derive(Term)]
#[term(elixir_struct = "MyApp.User")]
struct User {
    name: String,
}

fn main() {}
