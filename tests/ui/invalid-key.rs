use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(rename = "visits.")]
    visits: u64,
    #[session(alias = "old..views")]
    views: u64,
    #[session(rename = "page size")]
    page_size: u32,
}

fn main() {}
