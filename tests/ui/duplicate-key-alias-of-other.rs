use session::Session;

#[derive(Session, Default)]
struct Shop {
    #[session(alias = "visits_v1")]
    visits: u64,
    #[session(alias = "visits_v1")]
    views: u64,
    #[session(rename = "visits_v1")]
    hits: u64,
}

fn main() {}
