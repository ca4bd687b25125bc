use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(skip, flash)]
    notice: Option<String>,
}

fn main() {}
