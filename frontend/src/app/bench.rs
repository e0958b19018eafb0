//! A debug hook for the recompute benchmark: `window.__ratecardBench(lines, runs)` times the
//! estimate of a generated app inside the real browser and returns the figures as JSON.
//!
//! Built only with the `bench` feature (`frontend/bench.html`, `frontend/build.sh --bench`):
//! the production storefront does not ship it.
//!
//! Timing uses `performance.now()`, a float of milliseconds; floats here measure time only and
//! never touch an amount.

use std::sync::Arc;

use pricing::Catalog;
use wasm_bindgen::prelude::*;

use super::browser::{now_ms, today};
use crate::model::config::{products_for, AppConfig, Kind, TIERS_MAX};
use crate::model::estimate_view::{compute, sla_options};

/// An app of `lines` components spread over up to ten tiers, cycling through every kind of
/// component and every product of each kind, so that the bill has many distinct lines.
pub fn generated_app(catalog: &Catalog, lines: usize) -> AppConfig {
    let mut c = AppConfig::empty(catalog, today());
    let tiers = lines.clamp(1, 10).min(TIERS_MAX);
    for _ in 0..tiers {
        c.add_tier();
    }
    let region = c.region.clone();
    let kinds: Vec<(Kind, Vec<String>)> = Kind::ALL
        .into_iter()
        .map(|k| {
            let products = products_for(catalog, k, region.as_deref())
                .into_iter()
                .map(String::from)
                .collect();
            (k, products)
        })
        .filter(|(_, p): &(Kind, Vec<String>)| !p.is_empty())
        .collect();
    for i in 0..lines {
        let tier = c.tiers[i % tiers].key;
        let (kind, products) = &kinds[i % kinds.len()];
        c.add_component(catalog, tier, *kind);
        let comp = c.tiers[i % tiers]
            .components
            .last()
            .map(|x| x.key)
            .unwrap_or(0);
        let product = &products[(i / kinds.len()) % products.len()];
        c.set_field(
            catalog,
            tier,
            comp,
            crate::model::config::Field::Product,
            product,
        );
    }
    c
}

/// The median of `v` in whole microseconds. Durations are converted to integers first so that
/// neither a float sort nor float formatting is compiled into the app.
fn median_us(v: &[f64]) -> u64 {
    let mut us: Vec<u64> = v.iter().map(|ms| (ms * 1000.0).round() as u64).collect();
    // Insertion sort: at most a thousand runs, and no generic sort instantiation in the app.
    for i in 1..us.len() {
        let mut j = i;
        while j > 0 && us[j - 1] > us[j] {
            us.swap(j - 1, j);
            j -= 1;
        }
    }
    us.get(us.len() / 2).copied().unwrap_or_default()
}

/// Microseconds as milliseconds with three decimals (`1234` -> `1.234`).
fn ms_text(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// Installs `window.__ratecardBench`.
pub fn install(catalog: Arc<Catalog>) {
    let f = Closure::<dyn Fn(u32, u32) -> String>::new(move |lines: u32, runs: u32| {
        let c = generated_app(&catalog, lines as usize);
        let runs = runs.clamp(1, 1000);
        let mut estimate_ms = Vec::new();
        let mut full_ms = Vec::new();
        let mut total = String::new();
        let mut bill_lines = 0;
        // The mean over a batch as well as the median of single runs: Chromium coarsens
        // performance.now() to 0.1 ms without cross-origin isolation, so single runs of a fast
        // recompute are quantised; the batch's mean is not.
        let batch_start = now_ms();
        for _ in 0..runs {
            std::hint::black_box(compute(&catalog, std::hint::black_box(&c)));
        }
        let mean_us = ((now_ms() - batch_start) * 1000.0 / f64::from(runs)).round() as u64;
        // The engine's part alone: the quote is validated once, then only priced.
        let quote = c.validate(&catalog).quote;
        let batch_start = now_ms();
        if let Some(q) = &quote {
            for _ in 0..runs {
                let _ = std::hint::black_box(pricing::estimate(&catalog, std::hint::black_box(q)));
            }
        }
        let engine_mean_us = ((now_ms() - batch_start) * 1000.0 / f64::from(runs)).round() as u64;
        for _ in 0..runs {
            let t0 = now_ms();
            let o = compute(&catalog, &c);
            let t1 = now_ms();
            let current = o.estimate.as_ref().map(|e| e.monthly_total);
            let slas = sla_options(&catalog, o.quote.as_ref(), current);
            let t2 = now_ms();
            estimate_ms.push(t1 - t0);
            full_ms.push(t2 - t0);
            if let Some(e) = &o.estimate {
                total = e.monthly_total.to_string();
                bill_lines = e.bill.lines().count();
            }
            drop(slas);
        }
        // Hand-written JSON: every value is a number or a decimal string without quotes to escape.
        format!(
            "{{\"components\":{},\"bill_lines\":{},\"runs\":{},\"monthly_total\":\"{}\",\"estimate_mean_ms\":{},\"engine_only_mean_ms\":{},\"estimate_median_ms\":{},\"with_sla_comparison_median_ms\":{}}}",
            c.component_count(),
            bill_lines,
            runs,
            total,
            ms_text(mean_us),
            ms_text(engine_mean_us),
            ms_text(median_us(&estimate_ms)),
            ms_text(median_us(&full_ms)),
        )
    });
    if let Some(w) = web_sys::window() {
        let _ = js_sys::Reflect::set(&w, &JsValue::from_str("__ratecardBench"), f.as_ref());
    }
    // The hook lives as long as the page.
    f.forget();
}
