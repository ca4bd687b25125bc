use session::Session;

#[derive(Session, Default)]
#[session(namespace = "shop")]
struct Shop {
    #[session(alias = "visits")]
    visits: u64,
}

fn main() {}
