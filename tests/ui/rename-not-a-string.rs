use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(rename = visit_count)]
    visits: u64,
}

fn main() {}
