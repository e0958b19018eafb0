//! View models: plain Rust types holding the storefront's logic, with no web dependency, so that
//! they are tested natively with `cargo test -p frontend`. Components only render them.
//!
//! Architecture invariant: nothing here touches the DOM, the network or the clock; time and
//! files come in as arguments, exactly as in the pricing crate.

pub mod catalog_view;
pub mod config;
pub mod estimate_view;
pub mod explorer;
pub mod format;
pub mod invoice_preview;
pub mod publish;
pub mod replay;
pub mod share;
pub mod tenant;

#[cfg(test)]
pub(crate) mod testing;
