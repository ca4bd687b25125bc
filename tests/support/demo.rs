//! The demo example as a process of its own, on a free loopback port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// One running demo process; killed when dropped.
pub struct Demo {
    child: Child,
    pub port: u16,
}

impl Demo {
    /// Starts the demo on the store `SESSION_STORE=store` names and waits
    /// until it listens.
    pub async fn start(store: &str) -> Self {
        let port = free_port();
        let child = Command::new(demo_binary())
            .env("PORT", port.to_string())
            .env("SESSION_STORE", store)
            // Read by cookie-only sessions (`SESSION_STORE=cookie`) only.
            .env("SESSION_KEY", "k".repeat(64))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the demo binary runs");
        let demo = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the demo did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        demo
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo_binary() -> PathBuf {
    example_binary("demo")
}

/// `target/<profile>/examples/<name>`, next to this test's own binary.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let example = profile_dir.join("examples").join(name);
    assert!(
        example.exists(),
        "{} is missing: `cargo test` builds it",
        example.display()
    );
    example
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
