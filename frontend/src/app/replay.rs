//! The replay of a link made with an older price list: the app's month then and now, row by row, with the difference.

use leptos::prelude::*;

use super::{Replay, Shop};
use crate::model::estimate_view::RowKind;
use crate::model::replay::{replay, ReplayRow};

fn row_view(r: ReplayRow, currency: &str, testid: &'static str) -> impl IntoView {
    let class = match r.kind {
        RowKind::Plain => "",
        RowKind::Reduction => "reduction",
        RowKind::Tax => "tax",
        RowKind::Total => "total",
    };
    let [then, now, diff] = r.shown(currency);
    view! {
        <tr class=class data-testid=testid>
            <th scope="row">{r.label}</th>
            <td class="num">{then}</td>
            <td class="num">{now}</td>
            <td class="num">{diff}</td>
        </tr>
    }
}

/// Shown under the estimate while the link's price list version is not today's.
#[component]
pub fn ReplayPanel() -> impl IntoView {
    let shop = expect_context::<Shop>();
    let now = shop.catalog.clone();
    let config = shop.config;
    let view_model = Memo::new(move |_| match shop.replay.get() {
        Replay::Ready(then, _) => {
            Some(config.with(|c| replay(&then, &now, c).map_err(|e| e.to_string())))
        }
        Replay::None | Replay::Loading => None,
    });
    move || {
        view_model.get().map(|v| match v {
            Err(e) => view! {
                <section class="replay" aria-labelledby="replay-heading" data-testid="replay">
                    <h3 id="replay-heading">"Prices when the link was made"</h3>
                    <p role="status" data-testid="replay-error">{e}</p>
                </section>
            }
            .into_any(),
            Ok(v) => {
                let cur = v.currency.clone();
                let rows = v.rows.into_iter().map(|r| row_view(r, &cur, "replay-row")).collect_view();
                view! {
                    <section class="replay" aria-labelledby="replay-heading" data-testid="replay">
                        <h3 id="replay-heading">"Prices when the link was made"</h3>
                        <p class="muted">
                            "This app a month with price list " {v.then_version.clone()}
                            " (when the link was made) and with today's, " {v.now_version.clone()} "."
                        </p>
                        <div class="table-wrap">
                            <table class="replay-table">
                                <caption class="visually-hidden">"This app's month then and now, and the difference"</caption>
                                <thead>
                                    <tr>
                                        <th scope="col">"Item"</th>
                                        <th scope="col" class="num">"Then"</th>
                                        <th scope="col" class="num">"Now"</th>
                                        <th scope="col" class="num">"Difference"</th>
                                    </tr>
                                </thead>
                                <tbody>{rows}</tbody>
                                <tfoot>{row_view(v.total, &cur, "replay-total")}</tfoot>
                            </table>
                        </div>
                    </section>
                }
                .into_any()
            }
        })
    }
}
