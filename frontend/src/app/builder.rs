//! The app builder page: settings, templates, tiers and their components, with each field's
//! message beside it; the SLA section and the live estimate sit beside the builder.

use leptos::prelude::*;

use super::{estimate::EstimatePanel, sla::SlaSection, Built, Shop};
use crate::model::config::{
    currency_choices, products_for, Field, Kind, Target, APP_COMPONENTS_MAX, APP_NAME_LEN_MAX,
    TIERS_MAX,
};

/// Two overlapping squares: "duplicate". Drawn rather than a glyph, which not every font has.
fn copy_icon() -> impl IntoView {
    view! {
        <svg class="icon-svg" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">
            <rect x="5" y="5" width="9" height="9" rx="1.5"/>
            <path d="M3 11V3.5A1.5 1.5 0 0 1 4.5 2H11"/>
        </svg>
    }
}

fn shop() -> Shop {
    expect_context::<Shop>()
}

/// A select bound to an optional setting of the config.
fn setting_select(
    id: &'static str,
    label: &'static str,
    none_label: Option<&'static str>,
    options: Vec<(String, String)>,
    get: impl Fn(&crate::model::config::AppConfig) -> Option<String> + Send + Sync + Clone + 'static,
    set: impl Fn(&mut crate::model::config::AppConfig, Option<String>) + Send + Sync + Copy + 'static,
) -> impl IntoView {
    let s = shop();
    let config = s.config;
    let outcome = s.outcome;
    let message = move || outcome.with(|o| o.message(Target::Setting(id)).map(str::to_string));
    let get_value = get.clone();
    let input_id = format!("setting-{id}");
    let msg_id = format!("setting-{id}-msg");
    view! {
        <div class="field">
            <label for=input_id.clone()>{label}</label>
            <select
                id=input_id
                data-testid=format!("setting-{id}")
                aria-describedby=msg_id.clone()
                aria-invalid=move || message().map(|_| "true")
                prop:value=move || config.with(|c| get_value(c).unwrap_or_default())
                on:change=move |ev| {
                    let v = event_target_value(&ev);
                    config.update(|c| set(c, (!v.is_empty()).then_some(v)));
                }
            >
                {none_label.map(|l| view! { <option value="">{l}</option> })}
                {options
                    .into_iter()
                    .map(|(value, text)| {
                        let v = value.clone();
                        let get = get.clone();
                        view! {
                            <option value=value selected=move || config.with(|c| get(c).as_deref() == Some(v.as_str()))>
                                {text}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <p class="field-msg" id=msg_id aria-live="polite">{message}</p>
        </div>
    }
}

/// Region, currency, term, tax and the pricing day: they change every price on every page.
#[component]
pub fn SettingsBar(#[prop(optional)] compact: bool) -> impl IntoView {
    let s = shop();
    let cat = s.catalog.clone();
    let config = s.config;
    // A datacenter the provider does not bill sells nothing.
    let regions: Vec<(String, String)> = cat
        .regions
        .iter()
        .filter(|r| r.billed)
        .map(|r| (r.id.clone(), r.name.clone()))
        .collect();
    let currencies: Vec<(String, String)> = currency_choices(&cat)
        .into_iter()
        .map(|c| (c.clone(), c))
        .collect();
    let own_currency = cat.currency.code.clone();
    let terms: Vec<(String, String)> = cat
        .terms
        .iter()
        .map(|t| {
            let d = if t.discount_pct.is_zero() {
                String::new()
            } else {
                format!(" (−{} %)", t.discount_pct.normalize())
            };
            (t.id.clone(), format!("{}{d}", t.name))
        })
        .collect();
    let taxes: Vec<(String, String)> = cat
        .tax_jurisdictions
        .iter()
        .map(|t| (t.id.clone(), t.name.clone()))
        .collect();
    let date_msg = RwSignal::new(None::<String>);
    let has_coupons = !cat.coupons.is_empty();
    let outcome = s.outcome;
    let coupon_msg =
        move || outcome.with(|o| o.message(Target::Setting("coupon")).map(str::to_string));
    view! {
        <section class="settings" class:compact=compact aria-label="Pricing settings">
            {(!regions.is_empty()).then(|| setting_select("region", "Region", None, regions, |c| c.region.clone(), |c, v| c.region = v))}
            {setting_select(
                "currency",
                "Currency",
                None,
                currencies,
                move |c| Some(c.currency.clone().unwrap_or_else(|| own_currency.clone())),
                |c, v| c.currency = v,
            )}
            {(!compact && !terms.is_empty()).then(|| setting_select("term", "Term", None, terms, |c| c.term.clone(), |c, v| c.term = v))}
            {(!compact).then(|| setting_select(
                "tax_jurisdiction",
                "Tax",
                Some("No tax (net prices)"),
                taxes,
                |c| c.tax_jurisdiction.clone(),
                |c, v| c.tax_jurisdiction = v,
            ))}
            {(!compact).then(|| view! {
                <div class="field">
                    <label for="setting-at">"Prices as of"</label>
                    <input
                        id="setting-at"
                        type="date"
                        data-testid="setting-at"
                        aria-describedby="setting-at-msg"
                        prop:value=move || config.with(|c| c.at.to_string())
                        on:change=move |ev| {
                            match event_target_value(&ev).parse::<chrono::NaiveDate>() {
                                Ok(d) => {
                                    date_msg.set(None);
                                    config.update(|c| c.at = d);
                                }
                                Err(_) => date_msg.set(Some("Enter a date".into())),
                            }
                        }
                    />
                    <p class="field-msg" id="setting-at-msg" aria-live="polite">{move || date_msg.get()}</p>
                </div>
            })}
            {(!compact && has_coupons).then(|| view! {
                <div class="field">
                    <label for="setting-coupon">"Coupon code"</label>
                    <input
                        id="setting-coupon"
                        type="text"
                        autocomplete="off"
                        spellcheck="false"
                        maxlength="64"
                        data-testid="setting-coupon"
                        aria-describedby="setting-coupon-msg"
                        aria-invalid=move || coupon_msg().map(|_| "true")
                        prop:value=move || config.with(|c| c.coupon.clone().unwrap_or_default())
                        on:change=move |ev| {
                            let v = event_target_value(&ev).trim().to_string();
                            config.update(|c| c.coupon = (!v.is_empty()).then_some(v));
                        }
                    />
                    <p class="field-msg" id="setting-coupon-msg" aria-live="polite">{coupon_msg}</p>
                </div>
            })}
        </section>
    }
}

#[component]
pub fn BuildPage() -> impl IntoView {
    let s = shop();
    let config = s.config;
    let outcome = s.outcome;
    let built = s.built;
    let cat = s.catalog.clone();
    let templates: Vec<(String, String, String)> = cat
        .templates
        .iter()
        .map(|t| (t.id.clone(), t.name.clone(), t.description.clone()))
        .collect();
    let tier_keys = move || config.with(|c| c.tiers.iter().map(|t| t.key).collect::<Vec<u32>>());
    let app_msg = move || outcome.with(|o| o.message(Target::App).map(str::to_string));
    let name_msg = move || outcome.with(|o| o.message(Target::AppName).map(str::to_string));
    let cat_t = cat.clone();
    view! {
        <div class="build">
            <div class="builder">
                // On a phone the estimate is below the whole builder: the total stays in sight while the
                // builder scrolls by, and leaves with it (sticky within `.builder`). At the top, not
                // the bottom: pinned to the bottom of the screen it covered the controls under it
                // on a page just opened (Lighthouse's target-size audit); at the top it covers
                // nothing until the page scrolls.
                <a class="total-bar no-print" href="#estimate" data-testid="total-bar">
                    <span>"Total a month"</span>
                    <strong>{move || outcome.with(|o| o.estimate.as_ref().map(|e| crate::model::format::money(e.monthly_total, &e.currency)).unwrap_or_else(|| "—".into()))}</strong>
                </a>
                <SettingsBar/>
                <section class="panel" aria-labelledby="app-heading">
                    <h2 id="app-heading">"Your app"</h2>
                    <div class="field">
                        <label for="app-name">"App name"</label>
                        <input
                            id="app-name"
                            type="text"
                            data-testid="app-name"
                            autocomplete="off"
                            aria-describedby="app-name-msg"
                            prop:value=move || config.with(|c| c.name.clone())
                            on:input=move |ev| {
                                let v = event_target_value(&ev);
                                // Twice the limit: long enough for the message beside the field to show,
                                // short enough for a share link to carry (see share.rs).
                                config.update(|c| c.name = v.chars().take(2 * APP_NAME_LEN_MAX).collect());
                            }
                        />
                        <p class="field-msg" id="app-name-msg" aria-live="polite">{name_msg}</p>
                    </div>
                    {(!templates.is_empty()).then(|| view! {
                        <fieldset class="templates">
                            <legend>"Start from a template"</legend>
                            <div class="template-list">
                                {templates.into_iter().map(|(id, name, description)| {
                                    let cat = cat_t.clone();
                                    let tid = id.clone();
                                    let title = description.clone();
                                    view! {
                                        <button
                                            type="button"
                                            class="template"
                                            data-testid=format!("template-{id}")
                                            title=title
                                            on:click=move |_| config.update(|c| { c.apply_template(&cat, &tid); })
                                        >
                                            <strong>{name}</strong>
                                            <span class="muted">{description}</span>
                                        </button>
                                    }
                                }).collect_view()}
                            </div>
                        </fieldset>
                    })}
                    <p class="field-msg" role="status" data-testid="app-msg">{app_msg}</p>
                    <ol class="tiers" data-testid="tiers">
                        {move || (built.get() >= Built::Tiers).then(|| view! {
                            <For each=tier_keys key=|k| *k children=move |k| view! { <TierCard tier=k/> }/>
                        })}
                    </ol>
                    <button
                        type="button"
                        class="secondary"
                        data-testid="add-tier"
                        disabled=move || config.with(|c| c.tiers.len() >= TIERS_MAX)
                        on:click=move |_| config.update(|c| c.add_tier())
                    >
                        "+ Add a tier"
                    </button>
                </section>
                {move || (built.get() == Built::Whole).then(|| view! { <SlaSection/> })}
            </div>
            {move || (built.get() == Built::Whole).then(|| view! { <EstimatePanel/> })}

        </div>
    }
}

#[component]
fn TierCard(tier: u32) -> impl IntoView {
    let s = shop();
    let config = s.config;
    let outcome = s.outcome;
    let cat = s.catalog.clone();
    let name = move || {
        config.with(|c| {
            c.tiers
                .iter()
                .find(|t| t.key == tier)
                .map(|t| t.name.clone())
                .unwrap_or_default()
        })
    };
    let comp_keys = move || {
        config.with(|c| {
            c.tiers
                .iter()
                .find(|t| t.key == tier)
                .map(|t| t.components.iter().map(|x| x.key).collect::<Vec<u32>>())
                .unwrap_or_default()
        })
    };
    let position = move || config.with(|c| c.tiers.iter().position(|t| t.key == tier));
    let is_first = move || position() == Some(0);
    let is_last = move || config.with(|c| c.tiers.last().map(|t| t.key) == Some(tier));
    let msg = move || outcome.with(|o| o.message(Target::TierName(tier)).map(str::to_string));
    let name_id = format!("tier-{tier}-name");
    let msg_id = format!("tier-{tier}-name-msg");
    let add_kind = RwSignal::new(Kind::Compute);
    let tier_total = move || {
        let i = position()?;
        outcome.with(|o| {
            o.estimate.as_ref().and_then(|e| {
                e.tiers
                    .get(i)
                    .map(|t| crate::model::format::money(t.monthly, &e.currency))
            })
        })
    };
    view! {
        <li class="tier" data-testid="tier">
            <div class="tier-head">
                <div class="field tier-name">
                    <label for=name_id.clone()>"Tier name"</label>
                    <input
                        id=name_id
                        type="text"
                        data-testid="tier-name"
                        autocomplete="off"
                        aria-describedby=msg_id.clone()
                        aria-invalid=move || msg().map(|_| "true")
                        prop:value=name
                        on:input=move |ev| {
                            let v = event_target_value(&ev);
                            config.update(|c| c.rename_tier(tier, &v));
                        }
                    />
                    <p class="field-msg" id=msg_id aria-live="polite">{msg}</p>
                </div>
                <span class="tier-total" data-testid="tier-total">{tier_total}</span>
                <div class="tier-actions" role="group" aria-label=move || format!("Tier {}", name())>
                    <button type="button" class="icon" data-testid="tier-up" disabled=is_first
                        aria-label=move || format!("Move tier {} up", name())
                        on:click=move |_| config.update(|c| c.move_tier(tier, true))>"↑"</button>
                    <button type="button" class="icon" data-testid="tier-down" disabled=is_last
                        aria-label=move || format!("Move tier {} down", name())
                        on:click=move |_| config.update(|c| c.move_tier(tier, false))>"↓"</button>
                    <button type="button" class="icon" data-testid="tier-duplicate"
                        disabled=move || config.with(|c| c.tiers.len() >= TIERS_MAX)
                        aria-label=move || format!("Duplicate tier {}", name())
                        on:click=move |_| config.update(|c| c.duplicate_tier(tier))>{copy_icon()}</button>
                    <button type="button" class="icon danger" data-testid="tier-remove"
                        aria-label=move || format!("Remove tier {}", name())
                        on:click=move |_| config.update(|c| c.remove_tier(tier))>"✕"</button>
                </div>
            </div>
            <ul class="components">
                <For each=comp_keys key=|k| *k children=move |k| view! { <ComponentRow tier=tier component=k/> }/>
            </ul>
            <div class="add-component">
                <label for=format!("tier-{tier}-add-kind") class="visually-hidden">"Component to add"</label>
                <select
                    id=format!("tier-{tier}-add-kind")
                    data-testid="add-kind"
                    on:change=move |ev| {
                        if let Some(k) = Kind::from_id(&event_target_value(&ev)) {
                            add_kind.set(k);
                        }
                    }
                >
                    {Kind::ALL.into_iter().map(|k| view! { <option value=k.id()>{k.label()}</option> }).collect_view()}
                </select>
                <button
                    type="button"
                    class="secondary"
                    data-testid="add-component"
                    disabled=move || config.with(|c| c.component_count() >= APP_COMPONENTS_MAX)
                    on:click=move |_| {
                        let k = add_kind.get_untracked();
                        config.update(|c| c.add_component(&cat, tier, k));
                    }
                >
                    "+ Add"
                </button>
            </div>
        </li>
    }
}

#[component]
fn ComponentRow(tier: u32, component: u32) -> impl IntoView {
    let s = shop();
    let config = s.config;
    let kind = config.with_untracked(|c| {
        c.tiers
            .iter()
            .find(|t| t.key == tier)
            .and_then(|t| t.components.iter().find(|x| x.key == component))
            .map(|x| x.kind)
            .unwrap_or(Kind::Compute)
    });
    let fields = kind
        .fields()
        .iter()
        .map(|f| view! { <ComponentField tier=tier component=component kind=kind field=*f/> })
        .collect_view();
    view! {
        <li class="component" data-testid="component" data-kind=kind.id()>
            <div class="component-head">
                <span class="component-kind">{kind.label()}</span>
                <span class="component-actions">
                    <button type="button" class="icon" data-testid="component-duplicate"
                        aria-label=format!("Duplicate {}", kind.label().to_ascii_lowercase())
                        on:click=move |_| config.update(|c| c.duplicate_component(tier, component))>{copy_icon()}</button>
                    <button type="button" class="icon danger" data-testid="component-remove"
                        aria-label=format!("Remove {}", kind.label().to_ascii_lowercase())
                        on:click=move |_| config.update(|c| c.remove_component(tier, component))>"✕"</button>
                </span>
            </div>
            <div class="component-fields">{fields}</div>
        </li>
    }
}

#[component]
fn ComponentField(tier: u32, component: u32, kind: Kind, field: Field) -> impl IntoView {
    let s = shop();
    let config = s.config;
    let outcome = s.outcome;
    let cat = s.catalog.clone();
    let value = move || {
        config.with(|c| {
            c.tiers
                .iter()
                .find(|t| t.key == tier)
                .and_then(|t| t.components.iter().find(|x| x.key == component))
                .map(|x| x.get(field).to_string())
                .unwrap_or_default()
        })
    };
    let msg = move || {
        outcome.with(|o| {
            o.message(Target::Component(tier, component, field))
                .map(str::to_string)
        })
    };
    let id = format!("c-{tier}-{component}-{}", field.id());
    let msg_id = format!("{id}-msg");
    let testid = format!("field-{}", field.id());
    let cat_set = cat.clone();
    let set = move |v: String| {
        config.update(|c| c.set_field(&cat_set, tier, component, field, &v));
    };
    let hpm = cat.hours_per_month.normalize().to_string();
    let placeholder = match field {
        Field::Hours => Some(format!("{hpm} (24/7)")),
        Field::StoppedHours => Some("0".to_string()),
        _ => None,
    };
    let control = if field.is_choice() {
        let cat = cat.clone();
        let options = move || -> Vec<(String, String)> {
            let current = value();
            let mut opts: Vec<(String, String)> = match field {
                Field::Product => {
                    let region = config.with(|c| c.region.clone());
                    products_for(&cat, kind, region.as_deref())
                        .into_iter()
                        .filter_map(|p| cat.product(p))
                        .map(|p| (p.id.clone(), p.name.clone()))
                        .collect()
                }
                _ => {
                    let product = config.with(|c| {
                        c.tiers
                            .iter()
                            .find(|t| t.key == tier)
                            .and_then(|t| t.components.iter().find(|x| x.key == component))
                            .map(|x| x.product.clone())
                            .unwrap_or_default()
                    });
                    cat.product(&product)
                        .map(|p| {
                            p.charges
                                .iter()
                                .filter_map(|ch| cat.meter(&ch.meter))
                                .map(|m| (m.id.clone(), format!("{} ({})", m.name, m.unit_label())))
                                .collect()
                        })
                        .unwrap_or_default()
                }
            };
            // Keep a value that is no longer offered visible, so its message makes sense.
            if !current.is_empty() && !opts.iter().any(|(v, _)| *v == current) {
                opts.insert(0, (current.clone(), format!("{current} (not available)")));
            }
            opts
        };
        view! {
            <select
                id=id.clone()
                data-testid=testid
                aria-describedby=msg_id.clone()
                aria-invalid=move || msg().map(|_| "true")
                prop:value=value
                on:change=move |ev| set(event_target_value(&ev))
            >
                {move || {
                    let current = value();
                    options()
                        .into_iter()
                        .map(|(v, t)| {
                            let selected = v == current;
                            view! { <option value=v selected=selected>{t}</option> }
                        })
                        .collect_view()
                }}
            </select>
        }
        .into_any()
    } else {
        view! {
            <input
                id=id.clone()
                type="text"
                inputmode="decimal"
                autocomplete="off"
                data-testid=testid
                placeholder=placeholder
                aria-describedby=msg_id.clone()
                aria-invalid=move || msg().map(|_| "true")
                prop:value=value
                on:input=move |ev| set(event_target_value(&ev))
            />
        }
        .into_any()
    };
    view! {
        <div class="field" class:wide=field.is_choice()>
            <label for=id>{field.label(kind)}</label>
            {control}
            <p class="field-msg" id=msg_id aria-live="polite">{msg}</p>
        </div>
    }
}
