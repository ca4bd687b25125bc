use session::Session;

#[derive(Session, Default)]
struct Shop {
    user: Option<String>,
    #[session(alias = "user")]
    customer: Option<String>,
}

fn main() {}
