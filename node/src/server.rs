//! A role's API server on a clone of the node's listener, and the node's own route.

use std::net::TcpListener;

use axum::{extract::State as AxState, routing::get, Json, Router};

use crate::{io, NodeError, Shared, SERVER_GRACE};

/// `GET /v1/node`: the node's view ([`keel_sequencer::node::NodeStatus`]).
pub(crate) fn node_router(s: Shared) -> Router {
    Router::new()
        .route(
            "/v1/node",
            get(|AxState(s): AxState<Shared>| async move {
                Json(s.lock().unwrap_or_else(|p| p.into_inner()).clone())
            }),
        )
        .with_state(s)
}

/// An API server on a clone of the node's listener; dropping it stops accepting, and
/// [`Server::stop`] also waits for its connections to end (they hold the sequencer).
pub(crate) struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(
        rt: &tokio::runtime::Runtime,
        listener: &TcpListener,
        app: Router,
        limits: keel_http::Limits,
    ) -> Result<Self, NodeError> {
        let l = listener.try_clone().map_err(io("cloning the listener"))?;
        l.set_nonblocking(true)
            .map_err(io("setting up the listener"))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let _enter = rt.enter();
        let l = tokio::net::TcpListener::from_std(l).map_err(io("setting up the listener"))?;
        let task = rt.spawn(async move {
            let served = keel_http::serve(l, app, limits, async {
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                tracing::error!("serving the API: {e}");
            }
        });
        Ok(Self {
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Stops accepting and waits (at most [`SERVER_GRACE`]) for open connections to end.
    pub(crate) fn stop(mut self, rt: &tokio::runtime::Runtime) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(task) = self.task.take() {
            // the timer is made inside the runtime, which drives it
            let ended = rt.block_on(async { tokio::time::timeout(SERVER_GRACE, task).await });
            if ended.is_err() {
                tracing::warn!("the API's connections did not end within {SERVER_GRACE:?}");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
