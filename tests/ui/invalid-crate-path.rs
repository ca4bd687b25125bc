use session::Session;

#[derive(Session, Default)]
#[session(crate = "not a path")]
struct Shop {
    visits: u64,
}

fn main() {}
