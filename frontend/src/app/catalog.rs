//! The catalog browser page: search, category and region filters, prices per hour and month.

use leptos::prelude::*;
use pricing::catalog::Category;

use super::{builder::SettingsBar, Shop};
use crate::model::catalog_view::{categories, listing, Filter};

#[component]
pub fn CatalogPage() -> impl IntoView {
    let s = expect_context::<Shop>();
    let cat = s.catalog.clone();
    let config = s.config;
    let query = RwSignal::new(String::new());
    let category = RwSignal::new(None::<Category>);
    let cats = categories(&cat);
    let listing = Memo::new(move |_| {
        let (region, currency) = config.with(|c| (c.region.clone(), c.currency.clone()));
        let filter = Filter {
            query: query.get(),
            category: category.get(),
        };
        listing(&cat, region.as_deref(), currency.as_deref(), &filter)
    });
    view! {
        <section class="panel catalog" aria-labelledby="catalog-heading">
            <h2 id="catalog-heading">"Catalog"</h2>
            <div class="catalog-filters">
                <div class="field">
                    <label for="catalog-search">"Search"</label>
                    <input
                        id="catalog-search"
                        type="search"
                        data-testid="catalog-search"
                        placeholder="Name, size, category…"
                        prop:value=move || query.get()
                        on:input=move |ev| query.set(event_target_value(&ev))
                    />
                </div>
                <div class="field">
                    <label for="catalog-category">"Category"</label>
                    <select
                        id="catalog-category"
                        data-testid="catalog-category"
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            category.set(cats_lookup(&v));
                        }
                    >
                        <option value="">"All categories"</option>
                        {cats.iter().map(|c| view! { <option value=c.label()>{c.label()}</option> }).collect_view()}
                    </select>
                </div>
                <SettingsBar compact=true/>
            </div>
            <p class="muted" role="status" data-testid="catalog-count">
                {move || listing.with(|l| {
                    let mut s = format!("{} products, prices in {}", l.rows.len(), l.currency);
                    if l.hidden_by_region > 0 {
                        s.push_str(&format!("; {} not sold in this region are hidden", l.hidden_by_region));
                    }
                    s
                })}
            </p>
            <div class="table-wrap">
                <table class="catalog-table" data-testid="catalog-table">
                    <caption class="visually-hidden">"Products and prices"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Product"</th>
                            <th scope="col">"Category"</th>
                            <th scope="col" class="num">"Per hour"</th>
                            <th scope="col" class="num">"Per month"</th>
                            <th scope="col">"Prices"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || listing.with(|l| l.rows.iter().map(|r| {
                            let first = r.prices.first();
                            let per_hour = first.and_then(|p| p.per_hour.clone()).unwrap_or_else(|| "—".into());
                            let per_month = first.and_then(|p| p.per_month.clone()).unwrap_or_else(|| "—".into());
                            view! {
                                <tr data-testid="catalog-row" data-product=r.id.clone()>
                                    <th scope="row">
                                        <span class="product-name">{r.name.clone()}</span>
                                        <span class="muted product-specs">{r.specs.clone()}</span>
                                    </th>
                                    <td>{r.category.label()}</td>
                                    <td class="num" data-testid="per-hour">{per_hour}</td>
                                    <td class="num" data-testid="per-month">{per_month}</td>
                                    <td>
                                        <ul class="price-list">
                                            {r.prices.iter().map(|p| view! {
                                                <li><span class="muted">{p.what.clone()} ": "</span>{p.detail.clone()}</li>
                                            }).collect_view()}
                                        </ul>
                                    </td>
                                </tr>
                            }
                        }).collect_view())}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

fn cats_lookup(label: &str) -> Option<Category> {
    Category::ALL.into_iter().find(|c| c.label() == label)
}
