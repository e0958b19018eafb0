//! The invoice preview's web worker: imports and invoices a dropped usage export off the page.
//!
//! A second wasm module (Trunk builds it with `data-type="worker"`), so that the importers and
//! the invoicing are downloaded only when a file is dropped. The page sends
//! `[id, catalog JSON, config JSON, file name, bytes]` and gets `[id, PreviewView JSON]` back,
//! or `[id, "replay", then catalog JSON, today's catalog JSON, config JSON]` (a link made with
//! an older price list) and gets `[id, markup]` (see `app::browser::PreviewWorker`); the work
//! itself is `PreviewView::answer` and `replay::answer`, tested natively.

#[cfg(target_arch = "wasm32")]
fn main() {
    use frontend::model::invoice_preview::PreviewView;
    use frontend::model::replay::REPLAY;
    use wasm_bindgen::{closure::Closure, JsCast, JsValue};

    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let reply = scope.clone();
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let request: js_sys::Array = ev.data().unchecked_into();
            let text = |i| request.get(i).as_string().unwrap_or_default();
            let answer = if text(1) == REPLAY {
                frontend::model::replay::answer(&text(2), &text(3), &text(4))
            } else {
                let bytes = js_sys::Uint8Array::new(&request.get(4)).to_vec();
                PreviewView::answer(&text(1), &text(2), &text(3), &bytes)
            };
            let out = js_sys::Array::of2(&request.get(0), &JsValue::from_str(&answer));
            let _ = reply.post_message(&out);
        });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    let _ = scope.post_message(&JsValue::from_str("ready"));
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "the invoice preview's worker runs in the browser: `trunk build --release` builds it"
    );
    std::process::exit(2);
}
