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

    // `#[format_status]` is `#[gen_server]`'s; a connection has none.
    #[format_status]
    fn status(&self) -> u64 {
        0
    }
}

fn main() {}
