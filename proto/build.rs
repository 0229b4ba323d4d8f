//! Compiles `oryx/v1/signer.proto` with protox (a pure-Rust protobuf compiler), so no system
//! `protoc` is needed on a fresh machine. Only with the `grpc` feature: without it there is no
//! generated code and no build-time dependency on protox or tonic.

#[cfg(feature = "grpc")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=oryx/v1/signer.proto");
    let fds = protox::compile(["oryx/v1/signer.proto"], ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

#[cfg(not(feature = "grpc"))]
fn main() {
    // Nothing to generate; rerun only if the build script itself changes.
    println!("cargo:rerun-if-changed=build.rs");
}
