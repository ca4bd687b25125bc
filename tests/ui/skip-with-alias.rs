use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(alias = "tmp", skip)]
    scratch: u32,
}

fn main() {}
