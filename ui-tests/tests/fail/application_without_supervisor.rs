#[ergo::application(name = "lonely")]
struct App;

// The application never says which supervisor it starts.

fn main() {
    let _ = App::spec();
}
