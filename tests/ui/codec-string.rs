use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(codec = "session::Binary")]
    visits: u64,
}

fn main() {}
