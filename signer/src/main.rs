//! `oryx-signer`: the signing daemon and its admin commands (not built yet; the `oryx` CLI
//! already inspects, converts and signs offline).

fn main() -> std::process::ExitCode {
    eprintln!(
        "oryx-signer: no commands yet: the daemon is not built in this version; see `oryx --help`"
    );
    std::process::ExitCode::from(2)
}
