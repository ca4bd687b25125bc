use session::Session;

#[derive(Clone)]
struct Connection {
    id: u32,
}

#[derive(Session)]
struct Shop {
    visits: u64,
    #[session(skip)]
    connection: Connection,
}

fn main() {}
