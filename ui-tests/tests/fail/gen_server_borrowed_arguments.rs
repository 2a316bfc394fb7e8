use ergo::gen_server;

struct Greeter {
    greeting: String,
}

#[gen_server]
impl Greeter {
    fn init(greeting: &str) -> Self {
        Greeter {
            greeting: greeting.to_string(),
        }
    }

    #[call]
    fn greet(&self, name: &str) -> String {
        format!("{} {name}", self.greeting)
    }

    #[cast]
    fn log(&mut self, bytes: &[u8]) {
        let _ = bytes;
    }

    #[call]
    fn with_ref(&self, n: &i64) -> i64 {
        *n
    }
}

fn main() {}
