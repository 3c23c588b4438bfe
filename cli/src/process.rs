//! What every `keel` process does for itself: its logs, its key files, its signals, and
//! stopping with the devnet that started it.

use anyhow::Context;

/// Reads a secret key file: 64 hex digits ([`keel_node::keys`]).
pub(crate) fn read_key(path: &std::path::Path) -> anyhow::Result<keel_state::SecretKey> {
    Ok(keel_node::keys::read_key(path)?)
}

/// Completes on ctrl-c (SIGINT) or SIGTERM.
pub(crate) async fn stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("listening for ctrl-c"),
        _ = term.recv() => Ok(()),
    }
}

/// Logs to stderr through `tracing`, filtered by `filter`.
pub(crate) fn init_logs(filter: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).map_err(|e| anyhow::anyhow!("--log {filter}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .compact()
        .init();
    Ok(())
}

/// A process the devnet started stops (SIGTERM) when the devnet ends, however it ends.
pub(crate) fn die_with_parent() -> anyhow::Result<()> {
    let Some(parent) = std::env::var_os(crate::devnet::PARENT_ENV) else {
        return Ok(());
    };
    use rustix::process::{getppid, set_parent_process_death_signal, Pid, Signal};
    set_parent_process_death_signal(Some(Signal::TERM))?;
    // the devnet may have ended before the line above: then this process has a new parent
    let parent = parent.to_string_lossy().parse::<i32>().ok();
    if getppid().map(Pid::as_raw_nonzero).map(|p| p.get()) != parent {
        anyhow::bail!("the devnet that started this process has ended");
    }
    Ok(())
}
