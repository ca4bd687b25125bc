use session::Session;

struct NotACodec;

#[derive(Session, Default)]
struct Shop {
    #[session(codec = NotACodec)]
    visits: u64,
}

fn main() {}
