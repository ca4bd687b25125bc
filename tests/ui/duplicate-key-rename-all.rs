use session::Session;

#[derive(Session, Default)]
#[session(rename_all = "camelCase")]
struct Shop {
    page_2: u32,
    page2: u32,
}

fn main() {}
