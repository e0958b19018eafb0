//! The live estimate panel: totals, tiers and their lines, categories, the chart of where the
//! money goes, and the share, CSV and print actions.

use leptos::prelude::*;

use super::{browser, Shop};
use crate::model::estimate_view::{
    category_segments, summary_rows, tier_segments, to_csv, Segment, CHART_WIDTH,
};
use crate::model::format::{money, quantity, unit_price};
use crate::model::share;

/// Height of a chart bar in SVG user units.
const BAR_HEIGHT: u32 = 36;

fn bar(
    title: &'static str,
    testid: &'static str,
    segs: Vec<Segment>,
    currency: String,
) -> impl IntoView {
    let legend = segs
        .iter()
        .map(|s| {
            view! {
                <li>
                    <span class=format!("swatch seg-{}", s.color % 12) aria-hidden="true"></span>
                    {s.label.clone()} " · " {money(s.amount, &currency)} " (" {s.percent} " %)"
                </li>
            }
        })
        .collect_view();
    let desc = segs
        .iter()
        .map(|s| format!("{} {} %", s.label, s.percent))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <figure class="chart" data-testid=testid>
            <figcaption>{title}</figcaption>
            <svg
                viewBox=format!("0 0 {CHART_WIDTH} {BAR_HEIGHT}")
                preserveAspectRatio="none"
                role="img"
                aria-label=format!("{title}: {desc}")
            >
                {segs
                    .iter()
                    .map(|s| view! {
                        <rect
                            class=format!("seg-{}", s.color % 12)
                            x=s.x.to_string()
                            y="0"
                            width=s.width.to_string()
                            height=BAR_HEIGHT.to_string()
                        >
                            <title>{format!("{}: {} %", s.label, s.percent)}</title>
                        </rect>
                    })
                    .collect_view()}
            </svg>
            <ul class="legend">{legend}</ul>
        </figure>
    }
}

#[component]
pub fn EstimatePanel() -> impl IntoView {
    let s = expect_context::<Shop>();
    let outcome = s.outcome;
    let config = s.config;
    let cat = s.catalog.clone();
    let share_url = RwSignal::new(None::<String>);
    let action_msg = RwSignal::new(None::<String>);
    // A new configuration makes an old link stale; hide it rather than show a wrong one.
    Effect::new(move |_| {
        config.track();
        share_url.set(None);
    });
    let on_share = move |_| {
        let c = config.get_untracked();
        let url = share::link(&browser::base_url(), &c);
        browser::replace_hash(&format!("{}{}", share::FRAGMENT_KEY, share::encode(&c)));
        browser::copy_to_clipboard(&url);
        share_url.set(Some(url));
    };
    let on_csv = move |_| {
        let c = config.get_untracked();
        outcome.with_untracked(|o| {
            if let Some(e) = &o.estimate {
                let stem: String = c
                    .name
                    .chars()
                    .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
                    .take(40)
                    .collect();
                let name = if stem.is_empty() {
                    "estimate.csv".to_string()
                } else {
                    format!("estimate-{stem}.csv")
                };
                match browser::download(&name, "text/csv;charset=utf-8", &to_csv(&c, e)) {
                    Ok(()) => action_msg.set(Some(format!("Downloaded {name}"))),
                    Err(err) => action_msg.set(Some(format!("The download failed: {err}"))),
                }
            }
        });
    };
    let body = move || {
        outcome.with(|o| match &o.estimate {
            None => {
                let n = o.errors.len();
                let text = if n == 0 {
                    "Add a component to see its price.".to_string()
                } else if n == 1 {
                    "One field needs your attention; the estimate updates as soon as it is fixed.".to_string()
                } else {
                    format!("{n} fields need your attention; the estimate updates as soon as they are fixed.")
                };
                view! { <p class="estimate-pending" data-testid="estimate-pending">{text}</p> }.into_any()
            }
            Some(e) => {
                let cur = e.currency.clone();
                let rows = summary_rows(e);
                let tiers = e.tiers.clone();
                let cats = e.categories.clone();
                let cat_segs = category_segments(e);
                let tier_segs = tier_segments(e);
                let hourly = money(e.hourly_total, &cur);
                let yearly = money(e.yearly_total, &cur);
                let monthly = money(e.monthly_total, &cur);
                let c1 = cur.clone();
                let c2 = cur.clone();
                let c3 = cur.clone();
                let c4 = cur.clone();
                view! {
                    <div class="headline">
                        <div>
                            <span class="headline-label">"Total a month"</span>
                            <span class="headline-amount" data-testid="monthly-total" data-currency=cur.clone()>{monthly}</span>
                        </div>
                        <dl class="headline-side">
                            <dt>"Per hour"</dt><dd data-testid="hourly-total">{hourly}</dd>
                            <dt>"Per year"</dt><dd data-testid="yearly-total">{yearly}</dd>
                        </dl>
                    </div>
                    <div class="table-wrap">
                        <table class="estimate-tiers" data-testid="estimate-tiers">
                            <caption class="visually-hidden">"Cost by tier"</caption>
                            <thead>
                                <tr><th scope="col">"Tier"</th><th scope="col" class="num col-hourly">"Hourly"</th><th scope="col" class="num">"Monthly"</th><th scope="col" class="num col-yearly">"Yearly"</th></tr>
                            </thead>
                            {tiers.into_iter().map(|t| {
                                let c = c1.clone();
                                let lines = t.lines.clone();
                                view! {
                                    <tbody class="tier-group">
                                        <tr class="tier-row">
                                            <th scope="row">{t.name.clone()}</th>
                                            <td class="num col-hourly">{money(t.hourly, &c)}</td>
                                            <td class="num">{money(t.monthly, &c)}</td>
                                            <td class="num col-yearly">{money(t.yearly, &c)}</td>
                                        </tr>
                                        {lines.into_iter().map(|l| {
                                            let c = c.clone();
                                            view! {
                                                <tr class="line-row">
                                                    <td>
                                                        <span class="line-desc">{l.description.clone()}</span>
                                                        <span class="muted line-qty">
                                                            {quantity(l.quantity)} " " {l.unit.clone()} " × " {unit_price(l.unit_price, &c)}
                                                            {(l.per != rust_decimal::Decimal::ONE).then(|| format!(" per {}", quantity(l.per)))}
                                                        </span>
                                                    </td>
                                                    <td class="num col-hourly">{money(l.hourly, &c)}</td>
                                                    <td class="num">{money(l.monthly, &c)}</td>
                                                    <td class="num col-yearly">{money(l.yearly, &c)}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                }
                            }).collect_view()}
                        </table>
                    </div>
                    <table class="summary" data-testid="summary">
                        <caption class="visually-hidden">"Totals"</caption>
                        <tbody>
                            {rows.into_iter().map(|r| {
                                let class = r.kind.css_class();
                                view! {
                                    <tr class=class data-testid=format!("row-{}", r.id)>
                                        <th scope="row">{r.label.clone()}</th>
                                        <td class="num">{money(r.amount, &c2)}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    <div class="table-wrap">
                        <table class="categories" data-testid="categories">
                            <caption>"By category (monthly, before discounts and tax)"</caption>
                            <tbody>
                                {cats.into_iter().map(|c| view! {
                                    <tr><th scope="row">{c.category.label()}</th><td class="num">{money(c.monthly, &c3)}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    {bar("Where the money goes, by category", "chart-categories", cat_segs, c4.clone())}
                    {bar("By tier", "chart-tiers", tier_segs, c4)}
                }
                .into_any()
            }
        })
    };
    view! {
        <aside id="estimate" class="estimate panel" aria-labelledby="estimate-heading" data-testid="estimate">
            <h2 id="estimate-heading">"Estimate"</h2>
            <p class="print-only" data-testid="print-summary">
                {move || config.with(|c| {
                    let name = if c.name.trim().is_empty() { "Your app".to_string() } else { c.name.trim().to_string() };
                    let settings: Vec<String> = [
                        c.region.as_deref().and_then(|r| cat.region(r)).map(|r| r.name.clone()),
                        Some(c.currency.clone().unwrap_or_else(|| cat.currency.code.clone())),
                        c.sla_tier.as_deref().and_then(|s| cat.sla_tier(s)).map(|s| format!("{} SLA", s.name)),
                        c.term.as_deref().and_then(|t| cat.term(t)).map(|t| format!("{} term", t.name)),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    format!("{name} · prices as of {} · {}", c.at, settings.join(" · "))
                })}
            </p>
            <div aria-live="polite" aria-atomic="false">{body}</div>
            <div class="actions no-print">
                <button type="button" class="primary" data-testid="share" on:click=on_share>"Share link"</button>
                <button type="button" class="secondary" data-testid="export-csv"
                    disabled=move || outcome.with(|o| o.estimate.is_none())
                    on:click=on_csv>"Export CSV"</button>
                <button type="button" class="secondary" data-testid="print" on:click=move |_| browser::print()>"Print"</button>
            </div>
            {move || share_url.get().map(|u| view! {
                <div class="share-box no-print">
                    <label for="share-url">"Link to this app (copied to the clipboard when allowed)"</label>
                    <input id="share-url" type="text" readonly data-testid="share-url" prop:value=u
                        on:focus=move |ev| {
                            use wasm_bindgen::JsCast;
                            if let Some(i) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                                i.select();
                            }
                        }/>
                </div>
            })}
            <p class="muted no-print" role="status">{move || action_msg.get()}</p>
            <super::replay::ReplayPanel/>
        </aside>
    }
}
