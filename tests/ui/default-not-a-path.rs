use session::Session;

#[derive(Session)]
struct Shop {
    #[session(default = "|| 3")]
    visits: u64,
}

fn main() {}
