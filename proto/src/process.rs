//! What every Oryx binary does about its own process.
//!
//! Guards: a reader that leaves early (`oryx-signer watermark export | head`) is not an error.
//! `println!` panics when stdout is a closed pipe; [`quiet_on_broken_stdout`] turns exactly that
//! panic into a quiet successful exit, as Unix tools end on SIGPIPE, and leaves every other panic
//! to the default report.

/// Installs the panic hook described in the module docs. Call first thing in `main`.
pub fn quiet_on_broken_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
