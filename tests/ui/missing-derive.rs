use session::Session;

struct Plain {
    visits: u64,
}

async fn handler(session: Session<Plain>) -> u64 {
    let _ = session;
    0
}

fn main() {}
