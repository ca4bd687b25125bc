use session::Session;

#[derive(Session, Default)]
#[session(namespace = "shop", prefix = "shop_")]
struct Shop {
    visits: u64,
}

fn main() {}
