//! HTTP clients for the services the mediator calls (Vault, the FHIR server): one connection pool per
//! thread.
//!
//! A request is served start to end on the HTTP worker thread that received it
//! ([`crate::http::AppState::run`]). A connection's I/O is driven by a task on the runtime of the thread that
//! opened it. With one pool shared by every thread, a request on one worker often took a connection opened
//! on another: each answer then woke that other thread, which woke the request's. With a pool per thread,
//! a request's connections are polled on its own thread.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use reqwest::{Client, ClientBuilder};

thread_local! {
    /// This thread's client of each [`PerThreadClient`], with a handle that tells whether its owner is
    /// still alive (the clients of dropped owners, e.g. of a test's store, are let go on the next lookup).
    static CLIENTS: RefCell<Vec<(Weak<Settings>, Client)>> = const { RefCell::new(Vec::new()) };
}

/// How each thread's client is built: the same settings on every thread.
struct Settings(Box<dyn Fn() -> ClientBuilder + Send + Sync>);

/// One `reqwest::Client` per thread, all built with the same settings.
pub struct PerThreadClient {
    settings: Arc<Settings>,
    /// Built when this is created, so that bad settings fail at start; the fallback if a later build fails.
    first: Client,
}

impl std::fmt::Debug for PerThreadClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerThreadClient").finish_non_exhaustive()
    }
}

impl PerThreadClient {
    /// Clients built by `builder` (called once per thread that sends a request).
    pub fn new(
        builder: impl Fn() -> ClientBuilder + Send + Sync + 'static,
    ) -> reqwest::Result<Self> {
        let first = builder().build()?;
        Ok(PerThreadClient {
            settings: Arc::new(Settings(Box::new(builder))),
            first,
        })
    }

    /// The calling thread's client (a cheap handle to its pool).
    pub fn local(&self) -> Client {
        CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some((_, client)) = clients
                .iter()
                .find(|(owner, _)| std::ptr::eq(owner.as_ptr(), Arc::as_ptr(&self.settings)))
            {
                return client.clone();
            }
            clients.retain(|(owner, _)| owner.strong_count() > 0);
            // The settings built `first` already; a failure here (none is known) keeps the shared client.
            let client = (self.settings.0)()
                .build()
                .unwrap_or_else(|_| self.first.clone());
            clients.push((Arc::downgrade(&self.settings), client.clone()));
            client
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> usize {
        CLIENTS.with(|c| c.borrow().len())
    }

    #[test]
    fn one_client_per_thread_and_owner() {
        let clients = Arc::new(PerThreadClient::new(Client::builder).unwrap());
        let _ = clients.local();
        let _ = clients.local();
        assert_eq!(entries(), 1, "one client for one owner on this thread");
        let other = Arc::clone(&clients);
        let there = std::thread::spawn(move || {
            let _ = other.local();
            entries()
        })
        .join()
        .unwrap();
        assert_eq!(there, 1, "the other thread built its own");
        // A dropped owner's client is let go when another owner's is built.
        drop(clients);
        let second = PerThreadClient::new(Client::builder).unwrap();
        let _ = second.local();
        assert_eq!(entries(), 1);
    }
}
