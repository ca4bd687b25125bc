use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(skip = true)]
    scratch: u32,
    #[session(flash(always))]
    notice: Option<String>,
}

fn main() {}
