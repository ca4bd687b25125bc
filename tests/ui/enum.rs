use session::Session;

#[derive(Session)]
enum Shop {
    Empty,
    Full { items: Vec<String> },
}

fn main() {}
