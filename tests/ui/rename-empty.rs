use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(rename = "")]
    visits: u64,
}

fn main() {}
