use session::Session;

#[derive(Session, Default)]
struct Shop {
    theme: String,
    set_theme: bool,
    cart_mut: u8,
    cart: Vec<String>,
}

fn main() {}
