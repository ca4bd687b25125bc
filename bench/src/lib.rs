//! The benchmark harness of `session`: this library against its peers
//! (tower-sessions, actix-session) over HTTP, in-process (criterion) and at
//! scale. `scripts/bench` runs all of it and writes `BENCHMARKS.md`.
//!
//! - `bench-server`: one HTTP server per variant (library, store, framework),
//!   single-threaded, pinned by the runner;
//! - `bench-run`: the runner: interleaved rounds under wrk, server CPU and
//!   Redis traffic per request, the micro and scale results, the report and
//!   the chart;
//! - `bench-scale`: memory per session and clean-up times at a million
//!   sessions;
//! - `benches/micro.rs`: single operations side by side with tower-sessions.
//!
//! This library holds what they share: the session structs and their data.

pub mod profile;
