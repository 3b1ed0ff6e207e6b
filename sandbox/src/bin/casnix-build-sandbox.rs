//! `casnix-build-sandbox`: the helper the `native` backend runs for each build (see
//! `sandbox::native::helper`).

fn main() {
    std::process::exit(sandbox::native::helper::main());
}
