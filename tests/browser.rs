//! The demo in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`, which `scripts/test`
//! installs), once with the memory store and once with cookie-only sessions.
//! Log in, add to the cart, reload and still see it, see the notice exactly
//! once, find the session cookie out of JavaScript's reach, log out.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use support::demo::{free_port, Demo};

/// A chromedriver of this test's own, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (Debian: apt-get install chromium-driver; scripts/test installs it)");
        let driver = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// A headless Chromium session.
    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's text.
async fn text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Fills the form whose action is `action` with `value`, submits it and
/// waits for the page it leads to: a click returns before the navigation it
/// starts has replaced the page, and reading the old page then fails with a
/// stale element.
async fn submit(browser: &Client, action: &str, value: Option<&str>) {
    let old_page = browser.find(Locator::Css("html")).await.unwrap();
    let form = browser
        .find(Locator::Css(&format!("form[action='{action}']")))
        .await
        .unwrap_or_else(|_| panic!("no form for {action} on the page"));
    if let Some(value) = value {
        form.find(Locator::Css("input"))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    form.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match old_page.tag_name().await {
            Err(error) if error.is_stale_element_reference() => break,
            Err(error) => panic!("waiting for the page after {action}: {error}"),
            Ok(_) if Instant::now() > deadline => panic!("{action} led to no new page in 10 s"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn shop_in_a_browser(store: &str) {
    let demo = Demo::start(store).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let home = format!("http://127.0.0.1:{}/", demo.port);

    browser.goto(&home).await.unwrap();
    assert!(
        text(&browser).await.contains("Counter visits: 0"),
        "{store}"
    );
    submit(&browser, "/login", Some("ann")).await;
    let page = text(&browser).await;
    assert!(page.contains("Logged in as ann"), "{store}: {page}");
    assert!(page.contains("Welcome, ann!"), "{store}: {page}");

    submit(&browser, "/cart", Some("apple")).await;
    let page = text(&browser).await;
    assert!(page.contains("Added apple to the cart."), "{store}: {page}");
    assert!(page.contains("apple"), "{store}: {page}");

    // Reloaded: the cart is still there, the notice is gone (it showed once).
    browser.refresh().await.unwrap();
    let page = text(&browser).await;
    assert!(
        page.contains("apple") && page.contains("Logged in as ann"),
        "{store}: {page}"
    );
    assert!(
        !page.contains("Added apple"),
        "{store}: the notice showed twice: {page}"
    );

    // The browser holds the session cookie, and scripts cannot read it.
    let cookie = browser
        .get_named_cookie("session")
        .await
        .expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true), "{store}");
    let visible = browser
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert_eq!(
        visible,
        serde_json::json!(""),
        "{store}: scripts see {visible}"
    );

    submit(&browser, "/logout", None).await;
    let page = text(&browser).await;
    assert!(
        !page.contains("Logged in") && !page.contains("apple"),
        "{store}: {page}"
    );
    assert!(
        browser.get_named_cookie("session").await.is_err(),
        "{store}: logout left the cookie"
    );
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_browser_shops_on_the_memory_store() {
    shop_in_a_browser("memory").await;
}

#[tokio::test]
async fn a_browser_shops_with_cookie_only_sessions() {
    shop_in_a_browser("cookie").await;
}
