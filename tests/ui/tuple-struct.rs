use session::Session;

#[derive(Session, Default)]
struct Shop(Option<String>, u64);

fn main() {}
