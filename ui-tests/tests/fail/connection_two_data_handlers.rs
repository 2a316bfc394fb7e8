use ergo::connection;

struct Echo;

#[connection]
impl Echo {
    fn init() -> Self {
        Echo
    }

    #[data]
    fn data(&mut self, data: ergo::Bytes) {
        let _ = data;
    }

    #[data]
    fn more_data(&mut self, data: ergo::Bytes) {
        let _ = data;
    }
}

fn main() {}
