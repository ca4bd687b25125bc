use session::Session;

#[derive(Session, Default)]
#[session(namespace = "shop", namespace = "store")]
struct Shop {
    visits: u64,
}

fn main() {}
