//! The replay of a link made with an older price list: the app's month then and now, row by row, with the difference, computed and laid out by the preview's worker.
//!
//! The page only fetches the pinned version (app/mod.rs, `load_replay`) and hands both price
//! lists and the app to the worker, which prices it twice and answers finished, escaped markup
//! (`model::replay::answer`): the comparison adds nothing to the first download but this slot.

use std::rc::Rc;

use leptos::prelude::*;

use super::{browser, Replay, Shop};

/// Shown under the estimate while the link's price list version is not today's.
#[component]
pub fn ReplayPanel() -> impl IntoView {
    let shop = expect_context::<Shop>();
    let now_json = shop.catalog_json.clone();
    let (config, replay) = (shop.config, shop.replay);
    let markup = RwSignal::new(String::new());
    // The newest request: an answer to an older one (the app changed meanwhile) is dropped.
    let latest = StoredValue::new(0u32);
    let worker: StoredValue<Option<Rc<browser::PreviewWorker>>, LocalStorage> =
        StoredValue::new_local(None);
    Effect::new(move |_| {
        let settings = config.get();
        let Replay::Ready(_, then_json) = replay.get() else {
            markup.set(String::new());
            return;
        };
        let w = match worker.get_value() {
            Some(w) => w,
            None => match browser::PreviewWorker::start(
                move |id, answer| {
                    if id == latest.get_value() {
                        markup.set(answer);
                    }
                },
                move || markup.set(UNAVAILABLE.into()),
            ) {
                Ok(w) => {
                    let w = Rc::new(w);
                    worker.set_value(Some(w.clone()));
                    w
                }
                Err(_) => {
                    markup.set(UNAVAILABLE.into());
                    return;
                }
            },
        };
        let config_json = serde_json::to_string(&settings).expect("a config always serializes");
        latest.set_value(w.request_replay(&then_json, &now_json, &config_json));
    });
    view! { <div inner_html=move || markup.get()></div> }
}

/// What the slot says when the worker cannot run (no text from outside: static markup).
const UNAVAILABLE: &str = "<p role=\"status\" data-testid=\"replay-error\">The prices when the link was made could not be compared; reload the page to try again.</p>";
