//! The invoice preview page: drop or choose a usage export; it is read and invoiced in the
//! browser with the storefront's settings, and never leaves the page.

use std::rc::Rc;
use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::{browser, builder::SettingsBar, Shop};
use crate::model::invoice_preview::{InvoiceView, PreviewError, PreviewView, PREVIEW_BYTES_MAX};

/// The file being previewed: its name and bytes (kept so that a settings change re-invoices it).
type Dropped = Option<(String, Arc<Vec<u8>>)>;

fn load(file: web_sys::File, dropped: RwSignal<Dropped>, status: RwSignal<Option<String>>) {
    let name = file.name();
    if browser::file_size(&file) > PREVIEW_BYTES_MAX as u64 {
        status.set(Some(PreviewError::TooLarge.to_string()));
        return;
    }
    status.set(Some(format!("Reading {name}…")));
    leptos::task::spawn_local(async move {
        match browser::read_file(&file).await {
            Ok(bytes) => {
                status.set(None);
                dropped.set(Some((name, Arc::new(bytes))));
            }
            Err(e) => status.set(Some(format!("{name} could not be read: {e}"))),
        }
    });
}

fn invoice_view(inv: InvoiceView) -> impl IntoView {
    let sections = inv
        .sections
        .into_iter()
        .map(|s| {
            view! {
                <tbody>
                    <tr class="section-row"><th scope="colgroup" colspan="4">{s.name.clone()}</th></tr>
                    {s.lines.into_iter().map(|l| view! {
                        <tr>
                            <td>{l.description}</td>
                            <td class="num">{l.quantity}</td>
                            <td class="num">{l.unit_price}</td>
                            <td class="num">{l.amount}</td>
                        </tr>
                    }).collect_view()}
                    <tr class="section-total"><td colspan="3">{format!("{} total", s.name)}</td><td class="num">{s.total}</td></tr>
                </tbody>
            }
        })
        .collect_view();
    let cur = inv.currency;
    let account = inv.account.clone();
    view! {
        <article class="invoice" data-testid="invoice" data-account=account>
            <h3>"Account " {inv.account} " · period " {inv.period_id}</h3>
            <p class="muted">{inv.records} " usage records · price list " {inv.catalog_version} " · " {cur.clone()}</p>
            <div class="table-wrap">
                <table class="invoice-lines">
                    <thead><tr><th scope="col">"Item"</th><th scope="col" class="num">"Quantity"</th><th scope="col" class="num">"Unit price"</th><th scope="col" class="num">"Cost"</th></tr></thead>
                    {sections}
                </table>
            </div>
            <table class="summary">
                <tbody>
                    {inv.rows.into_iter().map(|r| view! {
                        <tr class=r.class><th scope="row">{r.label}</th><td class="num">{r.amount}</td></tr>
                    }).collect_view()}
                    <tr class="total"><th scope="row">"Total"</th><td class="num" data-testid="invoice-total" data-currency=cur>{inv.total}</td></tr>
                </tbody>
            </table>
            // Built and escaped by the preview's worker (`model::replay::against_html`,
            // `model::explorer`): none of it is in the page's first download.
            <div inner_html=inv.against></div>
            <div inner_html=inv.explorer></div>
        </article>
    }
}

#[component]
pub fn InvoicePage() -> impl IntoView {
    let s = expect_context::<Shop>();
    let catalog_json = s.catalog_json.clone();
    let config = s.config;
    let dropped = RwSignal::new(None::<(String, Arc<Vec<u8>>)>);
    let status = RwSignal::new(None::<String>);
    let dragging = RwSignal::new(false);
    let result = RwSignal::new(None::<PreviewView>);
    // The newest request: answers to older ones (a settings change while the worker was busy)
    // are dropped.
    let latest = StoredValue::new(0u32);
    let worker: StoredValue<Option<Rc<browser::PreviewWorker>>, LocalStorage> =
        StoredValue::new_local(None);
    // Every change of the file or of the settings re-invoices the file, in the worker. A link
    // made with an older price list is invoiced with that list, so its estimate and the usage
    // are compared under the same prices.
    let replay = s.replay;
    Effect::new(move |_| {
        let settings = config.get();
        let catalog_json = match replay.get() {
            super::Replay::Ready(_, json) => json,
            super::Replay::None | super::Replay::Loading => catalog_json.clone(),
        };
        dropped.with(|d| {
            let Some((name, bytes)) = d else { return };
            let w = match worker.get_value() {
                Some(w) => w,
                None => match browser::PreviewWorker::start(
                    move |id, answer| {
                        if id != latest.get_value() {
                            return;
                        }
                        status.set(None);
                        result.set(Some(serde_json::from_str(&answer).unwrap_or_else(|e| {
                            PreviewView {
                                error: Some(format!("The preview failed: {e}")),
                                ..PreviewView::default()
                            }
                        })));
                    },
                    move || status.set(Some("The invoice preview could not be loaded; reload the page to try again".into())),
                ) {
                    Ok(w) => {
                        let w = Rc::new(w);
                        worker.set_value(Some(w.clone()));
                        w
                    }
                    Err(e) => {
                        status.set(Some(format!("The preview could not start: {e}")));
                        return;
                    }
                },
            };
            let settings_json =
                serde_json::to_string(&settings).expect("a config always serializes");
            status.set(Some(format!("Invoicing {name}…")));
            latest.set_value(w.request(&catalog_json, &settings_json, name, bytes));
        });
    });
    view! {
        <section class="panel invoice-page" aria-labelledby="invoice-heading">
            <h2 id="invoice-heading">"Invoice preview"</h2>
            <p class="no-print">
                "Drop a usage export (canonical CSV, JSON Lines, CloudStack listUsageRecords or Ceilometer samples) "
                "to see the invoice it gives with the settings below. The file is read by this page only: it is never uploaded."
            </p>
            <SettingsBar/>
            <div
                class="dropzone no-print"
                class:dragging=move || dragging.get()
                data-testid="dropzone"
                on:dragover=move |ev: web_sys::DragEvent| {
                    ev.prevent_default();
                    dragging.set(true);
                }
                on:dragleave=move |_| dragging.set(false)
                on:drop=move |ev: web_sys::DragEvent| {
                    ev.prevent_default();
                    dragging.set(false);
                    if let Some(f) = ev.data_transfer().and_then(|d| d.files()).and_then(|l| l.get(0)) {
                        load(f, dropped, status);
                    }
                }
            >
                <p>"Drop the export here, or"</p>
                <label class="button secondary" for="usage-file">"Choose a file"</label>
                <input
                    id="usage-file"
                    class="visually-hidden"
                    type="file"
                    accept=".csv,.json,.jsonl,.ndjson,.txt,text/csv,application/json"
                    data-testid="usage-file"
                    on:change=move |ev| {
                        let input = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok());
                        if let Some(f) = input.as_ref().and_then(|i| i.files()).and_then(|l| l.get(0)) {
                            load(f, dropped, status);
                        }
                    }
                />
            </div>
            <p role="status" class="muted no-print" data-testid="invoice-status">{move || status.get()}</p>
            {move || result.get().map(|r| match r.error {
                None => view! {
                    <div data-testid="preview">
                        <p class="muted no-print" data-testid="preview-summary">{r.summary}</p>
                        <p class="no-print">
                            <button type="button" class="secondary" data-testid="print-invoice" on:click=move |_| browser::print()>"Print the invoice"</button>
                        </p>
                        {r.invoices.into_iter().map(invoice_view).collect_view()}
                    </div>
                }.into_any(),
                Some(message) => view! {
                    <div class="boot-error" role="alert" data-testid="preview-error">
                        <p>{message}</p>
                        <ul>{r.details.into_iter().map(|d| view! { <li>{d}</li> }).collect_view()}</ul>
                    </div>
                }.into_any(),
            })}
        </section>
    }
}
