//! The Leptos app (wasm32 only): boot (which storefront, which catalog), the page frame, and the
//! shared state every page reads. Pages live in the sibling modules and only render view models.

#[cfg(feature = "bench")]
mod bench;
mod browser;
mod builder;
mod catalog;
mod estimate;
mod invoice;
mod replay;
mod sla;

use std::sync::Arc;

use leptos::prelude::*;
use pricing::Catalog;

use crate::model::config::AppConfig;
use crate::model::estimate_view::{compute, Outcome};
use crate::model::share;
use crate::model::tenant::{self, ResellerIndex, Storefront, TenantError, Theme};

/// Mounts the storefront on `<body>`.
pub fn mount() {
    leptos::mount::mount_to_body(App);
}

/// What booting has reached.
#[derive(Clone)]
enum Boot {
    Loading,
    Failed(String),
    UnknownReseller(String),
    Ready(Arc<Loaded>),
}

/// A storefront with its catalog, ready to sell.
struct Loaded {
    storefront: Storefront,
    catalog: Arc<Catalog>,
    /// The published catalog as fetched, for the invoice preview's worker.
    catalog_json: Arc<str>,
    theme: Theme,
}

/// The pages of the storefront.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Build,
    Catalog,
    Invoice,
}

/// State shared by every page of a loaded storefront.
#[derive(Clone)]
pub struct Shop {
    pub catalog: Arc<Catalog>,
    /// The catalog's published JSON: the invoice preview's worker parses it itself.
    pub catalog_json: Arc<str>,
    pub config: RwSignal<AppConfig>,
    pub outcome: Memo<Outcome>,
    pub page: RwSignal<Page>,
    /// A message about the restored link (another catalog version, a damaged link).
    pub notice: RwSignal<Option<String>>,
    /// The price list version a shared link was made with, when it is not today's.
    pub replay: RwSignal<Replay>,
    /// How much of the storefront's first screen is built. It is built in three tasks (what a
    /// phone shows first; the app's tiers; the SLA comparison and the estimate), so that no
    /// single task blocks the page long. Pages opened later are built whole at once.
    pub built: RwSignal<Built>,
}

/// The parts of the first screen built so far, in the order they are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Built {
    /// The masthead, the settings and the app's name and templates.
    Top,
    /// ... and the app's tiers.
    Tiers,
    /// ... and the SLA comparison and the estimate: the whole screen.
    Whole,
}

/// The older price list a shared link pins, fetched from `catalogs/<storefront>/<version>.json`.
#[derive(Clone)]
pub enum Replay {
    /// The link is today's version (or no link was opened).
    None,
    Loading,
    /// The pinned price list, parsed and as published (for the invoice preview's worker).
    Ready(Arc<Catalog>, Arc<str>),
}

async fn boot() -> Result<Loaded, BootError> {
    let index_text = browser::fetch_text(crate::model::publish::INDEX_FILE)
        .await
        .map_err(BootError::Fetch)?;
    let index: ResellerIndex = serde_json::from_str(&index_text)
        .map_err(|e| BootError::Fetch(format!("the storefront index is damaged: {e}")))?;
    let storefront = tenant::resolve(
        &index,
        &browser::hostname(),
        browser::query_param("reseller").as_deref(),
        tenant::BuildKind::CURRENT,
    )
    .map_err(BootError::Tenant)?;
    let text = browser::fetch_text(&storefront.catalog_path)
        .await
        .map_err(BootError::Fetch)?;
    let catalog = parse_catalog(&text)
        .map_err(|e| BootError::Fetch(format!("the price list is damaged: {e}")))?;
    let theme = tenant::theme(catalog.brand.as_ref(), &catalog.name);
    Ok(Loaded {
        storefront,
        catalog: Arc::new(catalog),
        catalog_json: text.into(),
        theme,
    })
}

/// Parses and validates a published catalog. Unlike [`Catalog::from_json`] it does not track
/// the JSON path of a shape error: published catalogs are written by `publish-catalogs` from a
/// catalog that already passed `from_json`, and path tracking (serde_path_to_error over every
/// catalog type) would be a sixth of the app's size. Validation still runs in full. The text is
/// read straight into the catalog types: through a `serde_json::Value` every catalog visitor
/// would be compiled once more, for the `Value` deserializer.
fn parse_catalog(text: &str) -> Result<Catalog, String> {
    let catalog: Catalog = serde_json::from_str(text).map_err(|e| e.to_string())?;
    catalog.validate().map_err(|e| e.to_string())?;
    Ok(catalog)
}

enum BootError {
    Fetch(String),
    Tenant(TenantError),
}

#[component]
fn App() -> impl IntoView {
    let state = RwSignal::new(Boot::Loading);
    let start = move || {
        state.set(Boot::Loading);
        leptos::task::spawn_local(async move {
            let booted = boot().await;
            // Parsing the price list and building the first screen are two tasks, not one.
            browser::in_next_task(move || {
                state.set(match booted {
                    Ok(l) => Boot::Ready(Arc::new(l)),
                    Err(BootError::Fetch(e)) => Boot::Failed(e),
                    Err(BootError::Tenant(TenantError::UnknownReseller(id))) => {
                        Boot::UnknownReseller(id)
                    }
                })
            });
        });
    };
    start();
    move || {
        let reached = state.get();
        // The page prerendered at build time stays until the app has something of its own to
        // show: its loading view is hidden meanwhile (style.css), and the swap happens in one
        // task, so nothing shifts or flashes. An error page replaces it here; a storefront's
        // first screen does when it is whole (`ShopFrame`).
        if matches!(reached, Boot::Failed(_) | Boot::UnknownReseller(_)) {
            browser::remove_prerendered();
        }
        match reached {
        Boot::Loading => view! {
            <main class="boot" aria-busy="true">
                <p class="boot-message" role="status" data-testid="loading">"Loading the price list…"</p>
            </main>
        }
        .into_any(),
        Boot::Failed(e) => view! {
            <main class="boot">
                <div class="boot-error" role="alert" data-testid="load-error">
                    <h1>"The price list could not be loaded"</h1>
                    <p>{e}</p>
                    <button type="button" class="primary" data-testid="retry" on:click=move |_| start()>
                        "Try again"
                    </button>
                </div>
            </main>
        }
        .into_any(),
        Boot::UnknownReseller(id) => {
            browser::set_title("Storefront not found");
            view! {
                <main class="boot">
                    <div class="boot-error" data-testid="unknown-reseller">
                        <h1>"Storefront not found"</h1>
                        <p>"There is no storefront called “" {id} "”. Check the link you were given, or visit the main storefront."</p>
                        <a class="button primary" href=browser::path()>"Go to the main storefront"</a>
                    </div>
                </main>
            }
            .into_any()
        }
        Boot::Ready(l) => view! { <ShopFrame loaded=l/> }.into_any(),
    }
    }
}

/// The configuration to start from: the shared link's, or the catalog's starter app.
fn initial_config(catalog: &Catalog) -> (AppConfig, Option<String>) {
    match share::from_fragment(&browser::hash()) {
        Some(Ok(mut c)) => {
            let notice = share::restore(&mut c, catalog);
            (c, notice)
        }
        Some(Err(e)) => (
            AppConfig::starter(catalog, browser::today()),
            Some(format!(
                "The shared link could not be opened: {e}. Showing a starter app instead."
            )),
        ),
        None => (AppConfig::starter(catalog, browser::today()), None),
    }
}

/// Fetches the price list version the current link was made with when it is another version of
/// this storefront's, so the estimate can be shown as it was and as it is. A version no longer
/// published was withdrawn: the notice says so instead.
fn load_replay(shop: Shop, storefront: String) {
    let (id, version) = shop
        .config
        .with_untracked(|c| (c.catalog_id.clone(), c.catalog_version.clone()));
    if id != shop.catalog.id || version == shop.catalog.version {
        shop.replay.set(Replay::None);
        return;
    }
    if !crate::model::publish::is_version_name(&version) {
        shop.replay.set(Replay::None);
        return;
    }
    shop.replay.set(Replay::Loading);
    let now = shop.catalog.version.clone();
    leptos::task::spawn_local(async move {
        let url = crate::model::publish::version_path(&storefront, &version);
        let (replay, notice) = match browser::fetch_published(&url).await {
            Ok(Some(text)) => match parse_catalog(&text) {
                Ok(c) if c.id == shop.catalog.id && c.version == version => {
                    (Replay::Ready(Arc::new(c), text.into()), None)
                }
                Ok(_) | Err(_) => (
                    Replay::None,
                    Some(format!("The price list this link was made with ({version}) could not be read; the estimate uses today's prices ({now}).")),
                ),
            },
            Ok(None) => (
                Replay::None,
                Some(format!("The price list this link was made with ({version}) has been withdrawn; the estimate uses today's prices ({now}).")),
            ),
            Err(e) => (
                Replay::None,
                Some(format!("The price list this link was made with ({version}) could not be loaded ({e}); the estimate uses today's prices ({now}).")),
            ),
        };
        // Only if the link has not changed meanwhile.
        if shop.config.with_untracked(|c| c.catalog_version == version) {
            if notice.is_some() {
                shop.notice.set(notice);
            }
            shop.replay.set(replay);
        }
    });
}

#[component]
fn ShopFrame(loaded: Arc<Loaded>) -> impl IntoView {
    let catalog = loaded.catalog.clone();
    let (config0, notice0) = initial_config(&catalog);
    let config = RwSignal::new(config0);
    let cat = catalog.clone();
    let outcome = Memo::new(move |_| config.with(|c| compute(&cat, c)));
    let shop = Shop {
        catalog: catalog.clone(),
        catalog_json: loaded.catalog_json.clone(),
        config,
        outcome,
        page: RwSignal::new(Page::Build),
        notice: RwSignal::new(notice0),
        replay: RwSignal::new(Replay::None),
        built: RwSignal::new(Built::Top),
    };
    provide_context(shop.clone());
    #[cfg(feature = "bench")]
    bench::install(catalog.clone());

    // The rest of the first screen, one part per task, then the swap: the live view is hidden
    // while the prerendered copy is there (style.css), so the copy shows until the view is whole.
    let built = shop.built;
    browser::in_next_task(move || {
        built.set(Built::Tiers);
        browser::in_next_task(move || {
            built.set(Built::Whole);
            browser::remove_prerendered();
        });
    });

    let storefront_id = loaded.storefront.id.clone();
    load_replay(shop.clone(), storefront_id.clone());
    // A link pasted into the address bar of an open storefront changes only the fragment.
    let cat = catalog.clone();
    let sid = storefront_id.clone();
    let hash_shop = shop.clone();
    let on_hash = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || {
        if let Some(result) = share::from_fragment(&browser::hash()) {
            match result {
                Ok(mut c) => {
                    hash_shop.notice.set(share::restore(&mut c, &cat));
                    hash_shop.config.set(c);
                    load_replay(hash_shop.clone(), sid.clone());
                }
                Err(e) => hash_shop
                    .notice
                    .set(Some(format!("The shared link could not be opened: {e}."))),
            }
        }
    });
    if let Some(w) = web_sys::window() {
        w.set_onhashchange(Some(wasm_bindgen::JsCast::unchecked_ref(on_hash.as_ref())));
    }
    // The handler lives as long as the page.
    on_hash.forget();

    let theme = loaded.theme.clone();
    browser::set_title(&format!("{} — storefront", theme.name));
    browser::mark_catalog_version(&catalog.version);
    let page = shop.page;
    let tab = move |p: Page, label: &'static str, testid: &'static str| {
        view! {
            <button
                type="button"
                role="tab"
                class="tab"
                data-testid=testid
                aria-selected=move || if page.get() == p { "true" } else { "false" }
                on:click=move |_| page.set(p)
            >
                {label}
            </button>
        }
    };
    view! {
        // `data-built`: the first screen is whole (the build's prerender waits for it).
        <div class="shop" style=theme.css_vars.clone() data-storefront=storefront_id data-built=move || (built.get() == Built::Whole).then_some("whole")>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="masthead">
                <div class="brand" data-testid="brand">
                    {theme.logo_url.clone().map(|u| view! { <img class="logo" src=u alt="" width="40" height="40"/> })}
                    // The brand is the page's one level-one heading: pages are sections (h2) of it.
                    <h1 class="brand-name" data-testid="brand-name">{theme.name.clone()}</h1>
                </div>
                <nav class="tabs" role="tablist" aria-label="Storefront pages">
                    {tab(Page::Build, "Build an app", "tab-build")}
                    {tab(Page::Catalog, "Catalog", "tab-catalog")}
                    {tab(Page::Invoice, "Invoice preview", "tab-invoice")}
                </nav>
            </header>
            <div class="print-only print-header">
                <strong>{theme.name.clone()}</strong>
                " · price list " {catalog.version.clone()}
            </div>
            {move || shop.notice.get().map(|n| view! {
                <div class="notice" role="status" data-testid="notice">
                    <span>{n}</span>
                    <button type="button" class="link" on:click=move |_| shop.notice.set(None)>"Dismiss"</button>
                </div>
            })}
            <main id="main" tabindex="-1">
                {move || match page.get() {
                    Page::Build => builder::BuildPage().into_any(),
                    Page::Catalog => catalog::CatalogPage().into_any(),
                    Page::Invoice => invoice::InvoicePage().into_any(),
                }}
            </main>
            <footer class="footer">
                // The version, not the catalog id: a reseller's id names the provider behind it.
                "Prices from price list version " {catalog.version.clone()}
                ". Estimates are computed in your browser by the same engine that prepares invoices."
            </footer>
        </div>
    }
}
