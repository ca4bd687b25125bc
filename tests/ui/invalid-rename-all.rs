use session::Session;

#[derive(Session, Default)]
#[session(rename_all = "camelcase")]
struct Shop {
    last_visit: u64,
}

fn main() {}
