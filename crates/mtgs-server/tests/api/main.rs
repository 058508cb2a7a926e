//! HTTP integration tests: the real router and a real service on a fresh SQLite database
//! per test, driven over loopback with reqwest. One binary, one module per resource.

mod analysis;
mod audit;
mod conflicts;
mod errors;
mod governance;
mod helpers;
mod jwt;
mod probes;
mod simulations;
mod tools;
mod webhooks;
