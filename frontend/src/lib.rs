//! Ratecard storefront: plain view models over the pricing engine, and the Leptos app on wasm32.
#[cfg(target_arch = "wasm32")]
pub mod app;
pub mod model;
