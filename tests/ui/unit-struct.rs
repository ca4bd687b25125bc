use session::Session;

#[derive(Session, Default)]
struct Shop;

fn main() {}
