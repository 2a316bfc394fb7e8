use ergo::gen_server;

/// A request argument with no term form (`#[derive(Term)]` is missing).
struct Point {
    x: i64,
    y: i64,
}

struct Plotter;

#[gen_server]
impl Plotter {
    fn init() -> Self {
        Plotter
    }

    #[call]
    fn plot(&self, p: Point) -> i64 {
        p.x + p.y
    }
}

fn main() {}
