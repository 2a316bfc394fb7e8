use ergo::Term;

#[derive(Term)]
#[term(rename_all = "snakecase")]
struct Point {
    x_pos: i64,
}

fn main() {}
