use session::Session;

#[derive(Session, Default)]
struct Shop<T> {
    items: Vec<T>,
}

fn main() {}
