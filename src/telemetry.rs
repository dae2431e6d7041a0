//! Logging set-up and component states, in one place. Logs go to stderr so that stdout
//! carries only command output (reports, tables, JSON).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` wins over `verbose` when set.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("rootline={default},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Collector and worker states shown on /metrics and /status: name -> state. A state
/// starting with "ok" or "running" counts as up.
pub type Components = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

/// Sets one component's state.
pub fn set_component(components: &Components, name: &str, state: String) {
    if let Ok(mut c) = components.lock() {
        c.insert(name.to_string(), state);
    }
}

/// What sets a singleton job's state while another process on the store holds its
/// lease (`store::while_held`'s `on_standby`).
pub fn standby(components: &Components, name: &str) -> impl Fn() + Send + 'static {
    let (components, name) = (components.clone(), name.to_string());
    move || {
        set_component(
            &components,
            &name,
            "standby: another process on this store holds the lease".into(),
        )
    }
}
