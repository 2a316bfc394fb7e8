use ergo::connection;

struct Echo;

#[connection]
impl Echo {
    fn init() -> Self {
        Echo
    }

    #[data]
    fn data(&mut self, data: Vec<u8>) {
        let _ = data;
    }
}

fn main() {}
