//! The guard of a `*_mut()` accessor holds no lock: it may cross an `.await`
//! in a future that must be `Send`, as axum handlers and spawned tasks are.
use session::Session;

#[derive(Session, Default)]
struct Shop {
    item: String,
    cart: Vec<String>,
}

async fn add(shop: Session<Shop>) {
    let mut cart = shop.cart_mut();
    tokio::task::yield_now().await;
    cart.push(shop.item());
}

fn must_be_send<F: std::future::Future + Send>(future: F) -> F {
    future
}

#[allow(dead_code)]
fn spawnable(shop: Session<Shop>) {
    drop(must_be_send(add(shop)));
}

fn main() {}
