use ergo::Node;
use ergo::gen_stage;
use ergo::gen_stage::{Init, SubscribeOptions};

struct Numbers(i64);

#[gen_stage(out = i64)]
impl Numbers {
    #[init]
    fn init() -> Init<Self> {
        Init::producer(Numbers(0))
    }

    #[demand]
    fn demand(&mut self, demand: usize) -> Vec<i64> {
        let events = (self.0..self.0 + demand as i64).collect();
        self.0 += demand as i64;
        events
    }
}

struct Words;

#[gen_stage]
impl Words {
    #[init]
    fn init() -> Init<Self> {
        Init::consumer(Words)
    }

    #[events]
    fn words(&mut self, events: Vec<String>) {
        println!("{events:?}");
    }
}

async fn use_it(node: &Node) {
    let numbers = node.start_stage::<Numbers>(()).await.unwrap();
    let words = node.start_stage::<Words>(()).await.unwrap();
    // `Words` takes `String`s; `Numbers` emits `i64`s.
    let _ = words.subscribe(&numbers, SubscribeOptions::new()).await;
}

fn main() {
    let _ = use_it;
}
