//! The invoice preview page: drop or choose a usage export; it is read and invoiced in the
//! browser with the storefront's settings, and never leaves the page.

use std::sync::Arc;

use leptos::prelude::*;
use pricing::invoice::Invoice;
use wasm_bindgen::JsCast;

use super::{browser, builder::SettingsBar, Shop};
use crate::model::format::{money, percent, quantity, unit_price};
use crate::model::invoice_preview::{preview, PreviewError, PREVIEW_BYTES_MAX};

/// `text` with its first letter capitalised (error messages are written to be embedded).
fn sentence(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        // ASCII only: the messages are English, and Unicode case tables would grow the app.
        .map(|f| std::iter::once(f.to_ascii_uppercase()).chain(c).collect())
        .unwrap_or_default()
}

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

fn invoice_view(inv: Invoice) -> impl IntoView {
    let cur = inv.bill.currency.clone();
    let c = cur.clone();
    let sections = inv
        .bill
        .sections
        .iter()
        .map(|s| {
            let c = c.clone();
            view! {
                <tbody>
                    <tr class="section-row"><th scope="colgroup" colspan="4">{s.name.clone()}</th></tr>
                    {s.lines.iter().map(|l| view! {
                        <tr>
                            <td>{l.description.clone()}</td>
                            <td class="num">{quantity(l.quantity)} " " {l.unit.clone()}</td>
                            <td class="num">{unit_price(l.unit_price, &c)}</td>
                            <td class="num">{money(l.amount, &c)}</td>
                        </tr>
                    }).collect_view()}
                    <tr class="section-total"><td colspan="3">{format!("{} total", s.name)}</td><td class="num">{money(s.total, &c)}</td></tr>
                </tbody>
            }
        })
        .collect_view();
    let mut rows: Vec<(String, rust_decimal::Decimal, &'static str)> =
        vec![("Subtotal".into(), inv.bill.subtotal, "")];
    for d in inv.bill.discounts.iter().chain(&inv.bill.sla_credits) {
        rows.push((d.description.clone(), d.amount, "reduction"));
    }
    for t in &inv.bill.taxes {
        rows.push((
            format!("{} {}", t.name, percent(t.rate_pct)),
            t.amount,
            "tax",
        ));
    }
    view! {
        <article class="invoice" data-testid="invoice" data-account=inv.account.clone()>
            <h3>"Account " {inv.account.clone()} " · period " {inv.period_id.clone()}</h3>
            <p class="muted">{inv.records} " usage records · price list " {inv.bill.catalog_version.clone()} " · " {cur.clone()}</p>
            <div class="table-wrap">
                <table class="invoice-lines">
                    <thead><tr><th scope="col">"Item"</th><th scope="col" class="num">"Quantity"</th><th scope="col" class="num">"Unit price"</th><th scope="col" class="num">"Cost"</th></tr></thead>
                    {sections}
                </table>
            </div>
            <table class="summary">
                <tbody>
                    {rows.into_iter().map(|(label, amount, class)| view! {
                        <tr class=class><th scope="row">{label}</th><td class="num">{money(amount, &cur)}</td></tr>
                    }).collect_view()}
                    <tr class="total"><th scope="row">"Total"</th><td class="num" data-testid="invoice-total" data-currency=cur.clone()>{money(inv.bill.total, &cur)}</td></tr>
                </tbody>
            </table>
        </article>
    }
}

#[component]
pub fn InvoicePage() -> impl IntoView {
    let s = expect_context::<Shop>();
    let cat = s.catalog.clone();
    let config = s.config;
    let dropped = RwSignal::new(None::<(String, Arc<Vec<u8>>)>);
    let status = RwSignal::new(None::<String>);
    let dragging = RwSignal::new(false);
    let result = Memo::new(move |_| {
        let settings = config.get();
        dropped.with(|d| {
            d.as_ref()
                .map(|(name, bytes)| preview(&cat, &settings, name, bytes))
        })
    });
    view! {
        <section class="panel invoice-page" aria-labelledby="invoice-heading">
            <h2 id="invoice-heading">"Invoice preview"</h2>
            <p>
                "Drop a usage export (canonical CSV, JSON Lines, CloudStack listUsageRecords or Ceilometer samples) "
                "to see the invoice it gives with the settings below. The file is read by this page only: it is never uploaded."
            </p>
            <SettingsBar/>
            <div
                class="dropzone"
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
            <p role="status" class="muted" data-testid="invoice-status">{move || status.get()}</p>
            {move || result.get().map(|r| match r {
                Ok(p) => view! {
                    <div data-testid="preview">
                        <p class="muted" data-testid="preview-summary">
                            {p.file_name.clone()} ": " {p.records} " records (" {p.format.name()} ") for " {p.period.id()}
                            ", " {p.invoices.len()} " account(s)"
                        </p>
                        {p.invoices.into_iter().map(invoice_view).collect_view()}
                    </div>
                }.into_any(),
                Err(e) => {
                    let details = match &e {
                        PreviewError::Import { details, .. } => details.clone(),
                        _ => Vec::new(),
                    };
                    view! {
                        <div class="boot-error" role="alert" data-testid="preview-error">
                            <p>{sentence(&e.to_string())}</p>
                            <ul>{details.into_iter().map(|d| view! { <li>{d}</li> }).collect_view()}</ul>
                        </div>
                    }.into_any()
                }
            })}
        </section>
    }
}
