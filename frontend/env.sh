# Sourced by the storefront's scripts: the environment every storefront build uses.
# (Not executable on its own; `. frontend/env.sh` from the repository root or via the scripts.)

# wasm-opt 132 from npm (frontend/tools) and the cargo-installed trunk / wasm-bindgen.
export PATH="$REPO/frontend/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Trunk must not look for tool updates on the internet (see shared/TOOLING.md).
export TRUNK_OFFLINE=true
# Size flags for the wasm target only (native builds are unaffected):
# - `opt-level=z` for every crate: the workspace profile builds `pricing` at opt-level 3 for the
#   rater's speed, which makes the browser bundle about 20 % larger; this wins for wasm32 because
#   rustc takes the last `-C opt-level` it is given;
# - `--cfg erase_components` makes Leptos erase component types (smaller code, same behaviour).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C opt-level=z --cfg erase_components"
