//! `oryx-node`: producer-host side (bridge and block assembler, not built yet).

fn main() -> std::process::ExitCode {
    eprintln!(
        "oryx-node: no commands yet: the keosd bridge and the block assembler are not built in this version"
    );
    std::process::ExitCode::from(2)
}
