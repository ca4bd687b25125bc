use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(skip)]
    #[session(rename = "tmp")]
    scratch: u32,
}

fn main() {}
