//! What the stub-server tests of mtgs-embed share: an axum app served on a loopback port
//! from a runtime of its own in a background thread (test bodies stay synchronous, as
//! `reqwest`'s blocking client must not run inside a runtime), stopped when dropped.

#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

/// A running stub server.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).ok();
        }
    }
}

/// Serves `app` on a free loopback port until the returned value is dropped.
pub fn serve(app: axum::Router) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("a non-blocking listener");
    let url = format!("http://{}", listener.local_addr().expect("the bound address"));
    let (shutdown, stopped) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime for the stub");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    stopped.await.ok();
                })
                .await
                .expect("the stub serves");
        });
    });
    Served { url, shutdown: Some(shutdown) }
}

/// A poisoned lock still holds what the stub recorded.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
