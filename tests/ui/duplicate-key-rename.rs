use session::Session;

#[derive(Session, Default)]
struct Shop {
    user: Option<String>,
    #[session(rename = "user")]
    customer: Option<String>,
}

fn main() {}
