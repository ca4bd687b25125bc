use serde::{Deserialize, Serialize};
use session::Session;

#[derive(Default, Serialize, Deserialize)]
struct Basket {
    items: Vec<String>,
}

#[derive(Session, Default)]
struct Shop {
    visits: u64,
    basket: Basket,
}

fn main() {}
