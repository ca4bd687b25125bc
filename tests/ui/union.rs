use session::Session;

#[derive(Session)]
union Shop {
    visits: u64,
    flags: u32,
}

fn main() {}
