use session::Session;

#[derive(Session, Default)]
struct Shop {
    save: bool,
    max_age: u64,
    #[session(rename = "clone")]
    clone: u8,
    #[session(skip)]
    fmt: String,
}

fn main() {}
