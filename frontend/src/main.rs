//! Entry point: in the browser it mounts the storefront; natively there is nothing to run.

#[cfg(target_arch = "wasm32")]
fn main() {
    frontend::app::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the storefront runs in the browser: build it with `trunk build --release` (see frontend/serve.sh)");
    std::process::exit(2);
}
