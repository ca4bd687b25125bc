use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(renamed = "v")]
    visits: u64,
}

fn main() {}
