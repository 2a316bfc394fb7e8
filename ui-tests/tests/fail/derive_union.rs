use ergo::Term;

#[derive(Term)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
