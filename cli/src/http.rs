//! `--http.*`: what every server of `keel` tolerates from its clients ([`keel_http::Limits`]).

use std::time::Duration;

use clap::Args;

/// The HTTP edge's flags, shared by every command that serves an API.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpArgs {
    /// Longest a client may take to send a request's headers, or stay idle between requests,
    /// in milliseconds; then the connection is closed.
    #[arg(long = "http.header-timeout-ms", default_value_t = keel_http::Limits::default().header_timeout.as_millis() as u64)]
    pub(crate) header_timeout_ms: u64,
    /// Longest a request's body may take to arrive once its headers have, in milliseconds; then
    /// `408 timeout`.
    #[arg(long = "http.body-timeout-ms", default_value_t = keel_http::Limits::default().body_timeout.as_millis() as u64)]
    pub(crate) body_timeout_ms: u64,
    /// Most connections served at once; more wait to be accepted.
    #[arg(long = "http.max-connections", default_value_t = keel_http::Limits::default().max_connections as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: u32,
    /// Once the API's address is bound, write `{"service", "pid", "api"}` to this file
    /// (atomically): how a supervisor or a script learns that the process is ready, and where.
    #[arg(long = "ready-file")]
    pub(crate) ready_file: Option<std::path::PathBuf>,
}

impl HttpArgs {
    /// Announces readiness in `--ready-file`, if given.
    pub(crate) fn ready(&self, service: &str, addr: std::net::SocketAddr) -> anyhow::Result<()> {
        if let Some(path) = &self.ready_file {
            keel_http::Ready::new(service, addr)
                .write(path)
                .map_err(|e| anyhow::anyhow!("writing the ready file {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// The limits these flags set; the largest body stays the library's (routes have their own).
    pub(crate) fn limits(&self) -> keel_http::Limits {
        keel_http::Limits {
            header_timeout: Duration::from_millis(self.header_timeout_ms.max(1)),
            body_timeout: Duration::from_millis(self.body_timeout_ms.max(1)),
            max_connections: self.max_connections as usize,
            ..keel_http::Limits::default()
        }
    }
}
