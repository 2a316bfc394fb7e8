use ergo::Term;

#[derive(Term)]
#[term(elixir_struct = "Elixir.Shape")]
enum Shape {
    Circle(f64),
}

fn main() {}
