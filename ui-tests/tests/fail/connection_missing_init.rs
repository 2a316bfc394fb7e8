use ergo::connection;

struct Echo;

#[connection]
impl Echo {
    #[data]
    fn data(&mut self, data: ergo::Bytes) {
        let _ = data;
    }
}

fn main() {}
