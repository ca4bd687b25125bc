use session::Session;

#[derive(Session)]
struct Shop {
    #[session(default = "helpers::start_visits")]
    visits: u64,
}

fn main() {}
