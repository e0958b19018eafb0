//! SLA selection: one card per tier (uptime, support response, price impact on this app), one
//! click to choose, and the side-by-side comparison of all tiers for the current app.

use leptos::prelude::*;

use super::Shop;
use crate::model::estimate_view::{sla_options, SlaOption};
use crate::model::format::{money, percent, quantity};

fn hours(h: rust_decimal::Decimal) -> String {
    if h == rust_decimal::Decimal::ONE {
        "1 hour".into()
    } else {
        format!("{} hours", quantity(h))
    }
}

#[component]
pub fn SlaSection() -> impl IntoView {
    let s = expect_context::<Shop>();
    if s.catalog.sla_tiers.is_empty() {
        return ().into_any();
    }
    let cat = s.catalog.clone();
    let outcome = s.outcome;
    let config = s.config;
    let options = Memo::new(move |_| {
        outcome.with(|o| {
            let current = o.estimate.as_ref().map(|e| e.monthly_total);
            sla_options(&cat, o.quote.as_ref(), current)
        })
    });
    let currency = move || {
        outcome.with(|o| {
            o.estimate
                .as_ref()
                .map(|e| e.currency.clone())
                .unwrap_or_default()
        })
    };
    let card = move |o: SlaOption| {
        let cur = currency();
        let id = o.id.clone();
        let impact = match (o.delta, o.selected) {
            (_, true) => "Selected".to_string(),
            (Some(d), false) if d.is_zero() => "Same price".to_string(),
            (Some(d), false) if d.is_sign_positive() => format!("+{} a month", money(d, &cur)),
            (Some(d), false) => format!("{} a month", money(d, &cur)),
            (None, _) => "—".to_string(),
        };
        view! {
            <button
                type="button"
                class="sla-card"
                class:selected=o.selected
                role="radio"
                aria-checked=if o.selected { "true" } else { "false" }
                data-testid=format!("sla-{}", o.id)
                on:click=move |_| config.update(|c| c.sla_tier = Some(id.clone()))
            >
                <span class="sla-name">{o.name.clone()}</span>
                <span class="sla-uptime">{percent(o.uptime_pct)} " uptime"</span>
                <span class="muted">"Support responds within " {hours(o.support_response_hours)}</span>
                <span class="sla-total">{o.monthly_total.map(|t| money(t, &cur))} <span class="muted">" a month"</span></span>
                <span class="sla-impact" data-testid="sla-impact">{impact}</span>
            </button>
        }
    };
    view! {
        <section class="panel sla" aria-labelledby="sla-heading">
            <h2 id="sla-heading">"Service level"</h2>
            <div class="sla-cards" role="radiogroup" aria-labelledby="sla-heading">
                {move || options.get().into_iter().map(card).collect_view()}
            </div>
            <div class="table-wrap">
                <table class="sla-compare" data-testid="sla-compare">
                    <caption>"Compare the service levels for this app"</caption>
                    {move || {
                        let opts = options.get();
                        let cur = currency();
                        let head = opts.iter().map(|o| view! { <th scope="col">{o.name.clone()}</th> }).collect_view();
                        let row = |label: &'static str, cells: Vec<String>| view! {
                            <tr><th scope="row">{label}</th>{cells.into_iter().map(|c| view! { <td>{c}</td> }).collect_view()}</tr>
                        };
                        let col = |f: &dyn Fn(&SlaOption) -> String| opts.iter().map(f).collect::<Vec<_>>();
                        view! {
                            <thead><tr><td></td>{head}</tr></thead>
                            <tbody>
                                {row("Uptime", col(&|o| percent(o.uptime_pct)))}
                                {row("Support response", col(&|o| hours(o.support_response_hours)))}
                                {row("Price uplift", col(&|o| percent(o.uplift_pct)))}
                                {row("Covers", col(&|o| o.covers.join(", ")))}
                                {row("Service credits", col(&|o| o.credits.iter()
                                    .map(|(below, credit)| format!("{} below {}", percent(*credit), percent(*below)))
                                    .collect::<Vec<_>>().join("; ")))}
                                {row("This app a month", col(&|o| o.monthly_total.map(|t| money(t, &cur)).unwrap_or_else(|| "—".into())))}
                                {row("This app a year", col(&|o| o.yearly_total.map(|t| money(t, &cur)).unwrap_or_else(|| "—".into())))}
                            </tbody>
                        }
                    }}
                </table>
            </div>
        </section>
    }
    .into_any()
}
