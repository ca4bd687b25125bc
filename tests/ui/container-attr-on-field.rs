use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(rename_all = "camelCase")]
    last_visit: u64,
}

fn main() {}
