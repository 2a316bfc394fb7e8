#[ergo::supervisor(strategy = "one_for_one")]
struct Tree {
    // A plain number is neither a Child<Server> nor a supervisor.
    count: u32,
}

fn main() {}
