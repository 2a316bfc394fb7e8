#[ergo::supervisor]
enum Tree {
    A,
}

fn main() {}
