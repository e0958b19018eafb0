//! The few browser facilities the app uses (URL, clock, fetch, downloads, files), each behind a
//! small function so that components stay declarative.

use chrono::NaiveDate;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

fn window() -> web_sys::Window {
    web_sys::window().expect("the app runs in a window")
}

/// The page's hostname (`cloud.acme.example`).
pub fn hostname() -> String {
    window().location().hostname().unwrap_or_default()
}

/// A query parameter of the page URL.
pub fn query_param(name: &str) -> Option<String> {
    let search = window().location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

/// The fragment, `#` included (empty when there is none).
pub fn hash() -> String {
    window().location().hash().unwrap_or_default()
}

/// The page URL without its fragment: the base a share link is built on. It keeps
/// `?reseller=` so that a link made on a development preview opens the same storefront there
/// (a production build ignores the parameter).
pub fn base_url() -> String {
    let href = window().location().href().unwrap_or_default();
    match href.split_once('#') {
        Some((base, _)) => base.to_string(),
        None => href,
    }
}

/// The page's path, for the "main storefront" link of the unknown-reseller page.
pub fn path() -> String {
    window()
        .location()
        .pathname()
        .unwrap_or_else(|_| "/".into())
}

/// Today in UTC, from the browser's clock: the default day prices are taken at.
pub fn today() -> NaiveDate {
    let d = js_sys::Date::new_0();
    NaiveDate::from_ymd_opt(
        d.get_utc_full_year() as i32,
        d.get_utc_month() + 1,
        d.get_utc_date(),
    )
    .unwrap_or_default()
}

/// Fetches `url` as text; an HTTP error status is an error that names it.
pub async fn fetch_text(url: &str) -> Result<String, String> {
    let resp = gloo_net::http::Request::get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.ok() {
        return Err(format!(
            "{url}: HTTP {} {}",
            resp.status(),
            resp.status_text()
        ));
    }
    resp.text().await.map_err(|e| format!("{url}: {e}"))
}

/// A published file that may have been removed: `Ok(None)` when it is not there. Behind the CDN
/// a missing file is answered with the app's index.html (single-page routing) rather than a
/// 404, so a body that is not JSON counts as missing too.
pub async fn fetch_published(url: &str) -> Result<Option<String>, String> {
    let resp = gloo_net::http::Request::get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let json = resp
        .headers()
        .get("content-type")
        .is_some_and(|t| t.contains("json"));
    if resp.status() == 404 || (resp.ok() && !json) {
        return Ok(None);
    }
    if !resp.ok() {
        return Err(format!(
            "{url}: HTTP {} {}",
            resp.status(),
            resp.status_text()
        ));
    }
    resp.text()
        .await
        .map(Some)
        .map_err(|e| format!("{url}: {e}"))
}

/// Offers `text` as a file download named `file_name`.
pub fn download(file_name: &str, mime: &str, text: &str) -> Result<(), String> {
    let err = |e: wasm_bindgen::JsValue| format!("{e:?}");
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts).map_err(err)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(err)?;
    let doc = window().document().ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = doc
        .create_element("a")
        .map_err(err)?
        .dyn_into()
        .map_err(|_| "not an anchor".to_string())?;
    a.set_href(&url);
    a.set_download(file_name);
    a.click();
    web_sys::Url::revoke_object_url(&url).map_err(err)?;
    Ok(())
}

/// Opens the print dialog (the stylesheet's print rules make it the estimate).
pub fn print() {
    let _ = window().print();
}

/// Copies `text` to the clipboard when the page is allowed to; failure is not an error, the
/// link is on screen anyway.
pub fn copy_to_clipboard(text: &str) {
    let promise = window().navigator().clipboard().write_text(text);
    wasm_bindgen_futures::spawn_local(async move {
        let _ = JsFuture::from(promise).await;
    });
}

/// Puts the share fragment into the address bar without a new history entry or a reload.
pub fn replace_hash(fragment: &str) {
    if let Ok(h) = window().history() {
        let url = format!("{}#{fragment}", base_url());
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// Sets the document title.
pub fn set_title(title: &str) {
    if let Some(doc) = window().document() {
        doc.set_title(title);
    }
}

/// Runs `f` in a later task (a zero-delay timeout), so that it is not part of the current task:
/// the browser may handle input in between. The first render is cut this way (price list
/// parsed; first screen built part by part) so that no single task blocks a phone for long
/// (total blocking time: BENCHMARKS.md, issue 19).
pub fn in_next_task(f: impl FnOnce() + 'static) {
    let f = wasm_bindgen::closure::Closure::once_into_js(f);
    let f: &js_sys::Function = f.unchecked_ref();
    // Without a timer there is no later task: run it now rather than never.
    if window().set_timeout_with_callback(f).is_err() {
        let _ = f.call0(&wasm_bindgen::JsValue::NULL);
    }
}

/// Removes the storefront prerendered at build time (`frontend/tools/prerender.mjs` marks each
/// of its top-level elements `data-prerendered`). The app's own view is hidden while they are
/// there (style.css), so removing them shows it: called in the same task that finishes the
/// app's first screen, so the browser never paints both, nor neither.
pub fn remove_prerendered() {
    if let Some(doc) = window().document() {
        while let Ok(Some(e)) = doc.query_selector("[data-prerendered]") {
            e.remove();
        }
    }
}

/// Marks the price list version the page prices with on `<html data-catalog-version>`, for
/// the page's script (index.html) that tells the visitor when a newer one is published.
pub fn mark_catalog_version(version: &str) {
    if let Some(root) = window().document().and_then(|d| d.document_element()) {
        let _ = root.set_attribute("data-catalog-version", version);
    }
}

/// The size of a file in bytes. The File API reports it as a JS number; sizes are whole
/// numbers far below 2^53, so the conversion is exact.
pub fn file_size(file: &web_sys::File) -> u64 {
    file.size() as u64
}

/// Reads a file's bytes.
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buf = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// Milliseconds from the page's high-resolution clock, for the recompute benchmark only.
#[cfg(feature = "bench")]
pub fn now_ms() -> f64 {
    window().performance().map(|p| p.now()).unwrap_or_default()
}

/// The invoice preview's web worker: the second wasm module (`src/bin/preview_worker.rs`, built
/// by Trunk as `preview-worker` with a loader shim), started on the first dropped file so that
/// the importers and the invoicing are not part of the page's first download.
///
/// Requests are `[id, catalog JSON, config JSON, file name, bytes]`; answers are
/// `[id, PreviewView JSON]`. The worker says `"ready"` once it listens: requests made before
/// that wait here (a message to a worker that is still instantiating its wasm would be lost).
pub struct PreviewWorker {
    worker: web_sys::Worker,
    ready: std::rc::Rc<std::cell::Cell<bool>>,
    waiting: std::rc::Rc<std::cell::RefCell<Option<js_sys::Array>>>,
    next_id: std::cell::Cell<u32>,
    _on_message: wasm_bindgen::closure::Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: wasm_bindgen::closure::Closure<dyn FnMut(wasm_bindgen::JsValue)>,
}

/// The worker's script: Trunk names worker files after the binary, without a hash.
const PREVIEW_WORKER_URL: &str = "./preview-worker_loader.js";

impl PreviewWorker {
    /// Starts the worker; `on_answer` gets each answer's request id and JSON, `on_error` is
    /// called if the worker's script or wasm fails to load or run.
    pub fn start(
        on_answer: impl Fn(u32, String) + 'static,
        on_error: impl Fn() + 'static,
    ) -> Result<PreviewWorker, String> {
        use std::{cell::Cell, cell::RefCell, rc::Rc};
        let worker = web_sys::Worker::new(PREVIEW_WORKER_URL).map_err(|e| format!("{e:?}"))?;
        let ready = Rc::new(Cell::new(false));
        let waiting: Rc<RefCell<Option<js_sys::Array>>> = Rc::new(RefCell::new(None));
        let (r, q, w) = (ready.clone(), waiting.clone(), worker.clone());
        let on_message = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |ev: web_sys::MessageEvent| {
                let data = ev.data();
                if data.as_string().as_deref() == Some("ready") {
                    r.set(true);
                    if let Some(request) = q.borrow_mut().take() {
                        let _ = w.post_message(&request);
                    }
                    return;
                }
                let answer: js_sys::Array = data.unchecked_into();
                let id = answer.get(0).as_f64().unwrap_or(0.0) as u32;
                on_answer(id, answer.get(1).as_string().unwrap_or_default());
            },
        );
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let on_error = wasm_bindgen::closure::Closure::<dyn FnMut(wasm_bindgen::JsValue)>::new(
            move |_: wasm_bindgen::JsValue| on_error(),
        );
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(PreviewWorker {
            worker,
            ready,
            waiting,
            next_id: Cell::new(0),
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    /// Asks for the preview of one file; returns the request's id (answers to older requests
    /// are stale once a newer one is made).
    pub fn request(
        &self,
        catalog_json: &str,
        config_json: &str,
        file_name: &str,
        bytes: &[u8],
    ) -> u32 {
        self.send(|id| {
            js_sys::Array::of5(
                &wasm_bindgen::JsValue::from(id),
                &wasm_bindgen::JsValue::from_str(catalog_json),
                &wasm_bindgen::JsValue::from_str(config_json),
                &wasm_bindgen::JsValue::from_str(file_name),
                &js_sys::Uint8Array::from(bytes),
            )
        })
    }

    /// Asks for the replay of the app in `config_json` with an older price list and today's;
    /// the answer is markup (`model::replay::answer`).
    pub fn request_replay(&self, then_json: &str, now_json: &str, config_json: &str) -> u32 {
        self.send(|id| {
            js_sys::Array::of5(
                &wasm_bindgen::JsValue::from(id),
                &wasm_bindgen::JsValue::from_str(crate::model::replay::REPLAY),
                &wasm_bindgen::JsValue::from_str(then_json),
                &wasm_bindgen::JsValue::from_str(now_json),
                &wasm_bindgen::JsValue::from_str(config_json),
            )
        })
    }

    fn send(&self, request: impl FnOnce(u32) -> js_sys::Array) -> u32 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let request = request(id);
        if self.ready.get() {
            let _ = self.worker.post_message(&request);
        } else {
            // Only the newest request matters.
            *self.waiting.borrow_mut() = Some(request);
        }
        id
    }
}

impl Drop for PreviewWorker {
    /// The page is gone: stop the worker, and unhook the handlers before their closures go.
    fn drop(&mut self) {
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.terminate();
    }
}
