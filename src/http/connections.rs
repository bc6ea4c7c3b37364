//! Bounds on client connections: how many in all (`DDCC_MAX_CONNECTIONS`, actix's per-worker limit), how many
//! per client address (`DDCC_MAX_CONNECTIONS_PER_CLIENT`), and how long one may stay open without a request
//! being worked on (`DDCC_REQUEST_TIMEOUT`).
//!
//! actix-http bounds the head of a connection's first request (`client_request_timeout`) and the idle time
//! between requests (keep-alive), but not everything else: the head of a later request arriving byte by byte,
//! a response the client never reads, or a chunked request body whose last chunk never comes after the
//! answer was sent (actix then drains the body, without a timer, for as long as the client keeps the
//! connection open). Each connection therefore gets a watchdog: when no request on it is being handled and
//! nothing was answered for `DDCC_REQUEST_TIMEOUT`, it shuts the socket down. A request being handled is
//! never cut; its body has its own deadline (the same setting) in the handlers.
//!
//! The watchdog holds a duplicate of the connection's socket descriptor (so each open connection takes two
//! descriptors) and ends with the connection.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::net::{IpAddr, Shutdown};
use std::os::fd::AsFd as _;
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;

use super::client_address::{canonical, TrustedProxies};
use crate::service::metrics::Metrics;

type Tls = actix_tls::accept::rustls_0_23::TlsStream<TcpStream>;

/// Admits connections, at most `per_client` at a time from one address.
#[derive(Debug, Clone)]
pub struct Gate {
    per_client: usize,
    idle: Duration,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    metrics: Arc<Metrics>,
    /// Our own proxies carry many clients' connections: they are not held to `per_client`.
    proxies: TrustedProxies,
}

/// What [`Gate::on_connect`] leaves in a connection's data: its state, and its place in the per-client count
/// (given back when the connection ends).
#[derive(Debug)]
pub struct Connection {
    state: Rc<State>,
    /// `None` for a trusted proxy (not counted).
    _slot: Option<Slot>,
    /// Dropped with the connection: wakes the watchdog, which then ends (closing its descriptor).
    _closed: tokio::sync::oneshot::Sender<()>,
}

/// Marks a connection over the per-client limit (already shut down; a request that still arrives is refused).
#[derive(Debug, Clone, Copy)]
pub struct Refused;

#[derive(Debug)]
struct State {
    /// Requests being handled now.
    in_flight: Cell<usize>,
    /// When the connection opened or its last request was answered.
    last: Cell<Instant>,
}

/// Held while one request of a connection is handled.
#[derive(Debug)]
pub struct Busy(Rc<State>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0
            .in_flight
            .set(self.0.in_flight.get().saturating_sub(1));
        self.0.last.set(Instant::now());
    }
}

impl Connection {
    /// Marks a request as being handled until the returned guard drops.
    pub fn busy(&self) -> Busy {
        self.state.in_flight.set(self.state.in_flight.get() + 1);
        Busy(Rc::clone(&self.state))
    }
}

#[derive(Debug)]
struct Slot {
    client: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

impl Gate {
    pub fn new(
        per_client: usize,
        idle: Duration,
        metrics: Arc<Metrics>,
        proxies: TrustedProxies,
    ) -> Self {
        Gate {
            per_client,
            idle,
            open: Arc::new(Mutex::new(HashMap::new())),
            metrics,
            proxies,
        }
    }

    /// Takes a place for `client`, or `None` when it has `per_client` connections open already. The table
    /// holds only addresses with open connections, so it is bounded by `DDCC_MAX_CONNECTIONS`.
    fn admit(&self, client: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(client).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(Slot {
            client,
            open: Arc::clone(&self.open),
        })
    }

    /// Connections open now from `client` (tests).
    pub fn open_from(&self, client: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&client).copied().unwrap_or(0)
    }

    /// actix's `on_connect` hook (runs on the worker's event loop for each accepted connection, TLS after
    /// the handshake): counts the connection against its address, shuts it down at once when the address
    /// has too many, and otherwise starts its watchdog.
    pub fn on_connect(&self, connection: &dyn Any, data: &mut Extensions) {
        let tcp = match connection.downcast_ref::<TcpStream>() {
            Some(tcp) => tcp,
            None => match connection.downcast_ref::<Tls>() {
                Some(tls) => tls.get_ref().0,
                None => return,
            },
        };
        let Ok(peer) = tcp.peer_addr() else {
            return;
        };
        // A duplicate descriptor of the same socket: shutting it down ends the connection for actix too.
        let socket = tcp
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::net::TcpStream::from);
        let client = canonical(peer.ip());
        let slot = if self.proxies.trusts(client) {
            None
        } else if let Some(slot) = self.admit(client) {
            Some(slot)
        } else {
            self.metrics.connection_refused();
            tracing::debug!(%client, "connection refused: DDCC_MAX_CONNECTIONS_PER_CLIENT reached");
            if let Some(socket) = &socket {
                let _ = socket.shutdown(Shutdown::Both);
            }
            data.insert(Refused);
            return;
        };
        let state = Rc::new(State {
            in_flight: Cell::new(0),
            last: Cell::new(Instant::now()),
        });
        let (closed, on_close) = tokio::sync::oneshot::channel();
        if let Some(socket) = socket {
            actix_web::rt::spawn(watchdog(Rc::downgrade(&state), socket, self.idle, on_close));
        }
        data.insert(Connection {
            state,
            _slot: slot,
            _closed: closed,
        });
    }
}

/// Shuts `socket` down once its connection has had no request in hand for `idle`; ends with the connection.
async fn watchdog(
    state: Weak<State>,
    socket: std::net::TcpStream,
    idle: Duration,
    mut closed: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let deadline = {
            let Some(state) = state.upgrade() else {
                return;
            };
            if state.in_flight.get() > 0 {
                // Checked again later: a request in hand is bounded by its own deadlines.
                Instant::now() + idle
            } else {
                let deadline = state.last.get() + idle;
                if deadline <= Instant::now() {
                    tracing::debug!(
                        "connection closed: no request for DDCC_REQUEST_TIMEOUT ({} s)",
                        idle.as_secs()
                    );
                    let _ = socket.shutdown(Shutdown::Both);
                    return;
                }
                deadline
            }
        };
        tokio::select! {
            _ = &mut closed => return,
            () = actix_web::rt::time::sleep_until(deadline.into()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_per_client_connections_per_address_and_places_are_given_back() {
        let gate = Gate::new(
            2,
            Duration::from_secs(1),
            Arc::new(Metrics::new()),
            TrustedProxies::none(),
        );
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert!(gate.admit(a).is_none());
        assert!(gate.admit(canonical(b)).is_some(), "others unaffected");
        drop(first);
        assert_eq!(gate.open_from(a), 1);
        assert!(gate.admit(a).is_some());
        assert_eq!(canonical(b), "192.0.2.2".parse::<IpAddr>().unwrap());
    }
}
