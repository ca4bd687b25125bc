use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(skip, codec = session::Binary)]
    scratch: u32,
}

fn main() {}
