use session::Session;

fn three() -> u32 {
    3
}

#[derive(Session)]
struct Shop {
    #[session(default = "three")]
    visits: u64,
}

fn main() {}
