use session::Session;

#[derive(Default, Clone)]
struct Basket {
    items: Vec<String>,
}

#[derive(Session, Default)]
struct Shop {
    visits: u64,
    basket: Basket,
}

fn main() {}
