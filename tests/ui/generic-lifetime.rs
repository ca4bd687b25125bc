use session::Session;

#[derive(Session, Default)]
struct Shop<'a> {
    user: &'a str,
}

fn main() {}
