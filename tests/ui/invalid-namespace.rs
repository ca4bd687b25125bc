use session::Session;

#[derive(Session, Default)]
#[session(namespace = ".shop")]
struct Shop {
    visits: u64,
}

#[derive(Session, Default)]
#[session(namespace = "")]
struct Cart {
    items: Vec<String>,
}

fn main() {}
