use ergo::connection;

struct Pusher;

#[connection]
impl Pusher {
    fn init() -> Self {
        Pusher
    }

    #[call]
    fn ping(&self) -> bool {
        true
    }
}

fn main() {}
