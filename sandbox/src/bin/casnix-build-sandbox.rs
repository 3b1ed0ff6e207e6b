//! `casnix-build-sandbox`: the helper of the `native` backend, run once as its zygote (see
//! `sandbox::native::helper`).

fn main() {
    std::process::exit(sandbox::native::helper::main());
}
