use session::Session;

#[derive(Session, Default)]
#[session(codec = 42)]
struct Shop {
    #[session(codec = &session::Binary)]
    visits: u64,
}

fn main() {}
