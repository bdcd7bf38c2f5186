//! Logging: human-readable or JSON lines, filtered by `RUST_LOG` (default `info`).

use audiolab_config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Logs go to stderr so stdout stays for the listening line.
pub fn init(format: LogFormat) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::DynFilterFn;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,poem=warn"));
    // The decoder's library may warn once per packet of a hostile file; during a decode those
    // warnings are counted and logged as one line by the job (`media::decode::tally_warnings`).
    // Asked per event (`sometimes`), since the answer depends on the thread's decode.
    let decoder_warnings = || {
        DynFilterFn::new(|meta, _| !audiolab_media::decode::absorb_library_warning(meta.target()))
            .with_callsite_filter(|_| tracing::subscriber::Interest::sometimes())
    };
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(decoder_warnings()))
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).with_filter(decoder_warnings()))
            .try_init(),
    };
}
