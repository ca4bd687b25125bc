use session::Session;

#[derive(Session, Default)]
#[session(default = "Shop::empty")]
struct Shop {
    visits: u64,
}

fn main() {}
