use session::Session;

#[derive(Session, Default)]
#[session(namespace = "", rename_all = "Title Case")]
struct Shop {
    #[session(rename = "cart")]
    user: Option<String>,
    cart: Vec<String>,
    #[session(flash, skip)]
    notice: Option<String>,
    #[session(default = 3, unknown)]
    visits: u64,
    save: bool,
}

fn use_it(shop: &session::Session<Shop>) -> bool {
    shop.is_new()
}

fn main() {
    let _ = use_it;
}
