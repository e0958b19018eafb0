//! Ratecard storefront: view models over the pricing engine (the Leptos app lands with its issue).
