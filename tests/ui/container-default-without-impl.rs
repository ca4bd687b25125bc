use session::Session;

#[derive(Session)]
#[session(default)]
struct Shop {
    visits: u64,
    #[session(flash)]
    notice: Option<String>,
}

fn main() {}
