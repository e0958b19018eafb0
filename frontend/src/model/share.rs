//! Share links: the whole app configuration and the catalog version in the URL fragment, and a
//! decoder that refuses anything malformed without ever panicking (links come from anyone).
//!
//! Format: `#app=v1.<base64url of the config's JSON>`. The fragment is never sent to a server,
//! so a shared configuration stays between the people who share it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::config::{
    AppConfig, APP_COMPONENTS_MAX, APP_NAME_LEN_MAX, ID_LEN_MAX, NUMBER_TEXT_LEN_MAX, TIERS_MAX,
    TIER_NAME_LEN_MAX,
};

/// The fragment key the configuration travels under.
pub const FRAGMENT_KEY: &str = "app=";
/// The encoding version; a new layout gets a new prefix and the decoder keeps reading old ones.
pub const VERSION_PREFIX: &str = "v1.";
/// Longest encoded configuration accepted. The largest valid app (500 components with every
/// field at its longest) encodes to well under this; anything longer is not ours, and the bound
/// keeps decoding cheap whatever is pasted.
pub const ENCODED_LEN_MAX: usize = 256 * 1024;
/// Longest text field a link may carry (app and tier names are cut to twice their limit while
/// typing, so that the message beside them can say they are too long).
const TEXT_LEN_MAX: usize = 2 * APP_NAME_LEN_MAX;

/// Why a link could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("the link is longer than any app this storefront makes")]
    TooLong,
    #[error("the link was made by a newer storefront (format `{0}`)")]
    UnknownVersion(String),
    #[error("the link is damaged (not valid base64url)")]
    BadEncoding,
    #[error("the link is damaged: {0}")]
    BadContent(String),
    #[error("the link describes an app beyond this storefront's limits: {0}")]
    OverLimit(String),
}

/// The encoded configuration (what follows `#app=`).
pub fn encode(config: &AppConfig) -> String {
    let json = serde_json::to_string(config).expect("a config always serializes");
    format!("{VERSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
}

/// The full link: `base` (origin and path, with `?reseller=` when the storefront was chosen
/// that way) and the fragment.
pub fn link(base: &str, config: &AppConfig) -> String {
    format!("{base}#{FRAGMENT_KEY}{}", encode(config))
}

/// The configuration in a URL fragment (`#app=...` with or without the `#`), `None` when the
/// fragment holds none.
pub fn from_fragment(fragment: &str) -> Option<Result<AppConfig, ShareError>> {
    let f = fragment.strip_prefix('#').unwrap_or(fragment);
    f.split('&')
        .find_map(|part| part.strip_prefix(FRAGMENT_KEY))
        .map(decode)
}

/// Decodes what [`encode`] made. Never panics; every field's length and the app's size are
/// checked before the app reaches the builder. Keys are assigned afresh.
pub fn decode(text: &str) -> Result<AppConfig, ShareError> {
    if text.len() > ENCODED_LEN_MAX {
        return Err(ShareError::TooLong);
    }
    let Some(payload) = text.strip_prefix(VERSION_PREFIX) else {
        let version: String = text
            .split('.')
            .next()
            .unwrap_or_default()
            .chars()
            .take(8)
            .collect();
        return Err(ShareError::UnknownVersion(version));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| ShareError::BadEncoding)?;
    // Through `&str` like every other JSON the app reads: one reader type instantiated, not two.
    let text = std::str::from_utf8(&bytes).map_err(|_| ShareError::BadEncoding)?;
    let mut config: AppConfig = serde_json::from_str(text).map_err(|e| {
        // serde's message names the field and position, never the (attacker's) content at length.
        let mut m = e.to_string();
        m.truncate(200);
        ShareError::BadContent(m)
    })?;
    check_limits(&config)?;
    config.rekey();
    Ok(config)
}

fn check_limits(c: &AppConfig) -> Result<(), ShareError> {
    let over = |what: String| Err(ShareError::OverLimit(what));
    if c.tiers.len() > TIERS_MAX {
        return over(format!("{} tiers (at most {TIERS_MAX})", c.tiers.len()));
    }
    if c.component_count() > APP_COMPONENTS_MAX {
        return over(format!(
            "{} components (at most {APP_COMPONENTS_MAX})",
            c.component_count()
        ));
    }
    let long = |s: &str, max: usize| s.chars().count() > max;
    let ids = [&c.catalog_id, &c.catalog_version]
        .into_iter()
        .chain(c.region.iter())
        .chain(c.sla_tier.iter())
        .chain(c.currency.iter())
        .chain(c.term.iter())
        .chain(c.tax_jurisdiction.iter())
        .chain(c.coupon.iter());
    for id in ids {
        if long(id, ID_LEN_MAX) {
            return over("an id longer than any catalog id".into());
        }
    }
    if long(&c.name, TEXT_LEN_MAX) {
        return over("the app name is too long".into());
    }
    for t in &c.tiers {
        if long(&t.name, TIER_NAME_LEN_MAX * 2) {
            return over("a tier name is too long".into());
        }
        for comp in &t.components {
            if long(&comp.product, ID_LEN_MAX) || long(&comp.meter, ID_LEN_MAX) {
                return over("an id longer than any catalog id".into());
            }
            let numbers = [
                &comp.count,
                &comp.hours,
                &comp.stopped_hours,
                &comp.size_gb,
                &comp.gb_in,
                &comp.gb_out,
                &comp.quantity,
            ];
            if numbers.iter().any(|n| long(n, NUMBER_TEXT_LEN_MAX)) {
                return over("a number longer than any valid value".into());
            }
        }
    }
    Ok(())
}

/// A restored link made for this storefront's `catalog`: its currency dropped when the catalog
/// cannot quote in it (a reseller's storefront quotes in its own currency only, and a link may
/// come from another storefront or from before), so that the estimate shows in the catalog's
/// currency instead of an error; and what to tell the customer ([`catalog_notice`], and the
/// currency dropped).
pub fn restore(config: &mut AppConfig, catalog: &pricing::Catalog) -> Option<String> {
    let mut notice = catalog_notice(config, &catalog.id, &catalog.version);
    if let Some(code) = config.currency.take() {
        if super::config::currency_choices(catalog).contains(&code) {
            config.currency = Some(code);
        } else {
            let dropped = format!(
                "This link was made in {}; this storefront quotes in {} only.",
                shorten(&code),
                catalog.currency.code
            );
            notice = Some(match notice {
                Some(n) => format!("{n} {dropped}"),
                None => dropped,
            });
        }
    }
    notice
}

/// What the storefront tells the customer after restoring a link made against another catalog
/// or another version of it: the app is restored as it was, but prices may differ.
pub fn catalog_notice(
    config: &AppConfig,
    catalog_id: &str,
    catalog_version: &str,
) -> Option<String> {
    if config.catalog_id != catalog_id {
        Some(format!(
            "This link was made for another price list ({}); it is shown with this storefront's prices.",
            shorten(&config.catalog_id)
        ))
    } else if config.catalog_version != catalog_version {
        Some(format!(
            "Prices have changed since this link was made (version {} then, {} now); the estimate uses today's prices.",
            shorten(&config.catalog_version),
            catalog_version
        ))
    } else {
        None
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::{Field, Kind};
    use crate::model::testing::{cloudstack, day};

    fn sample() -> AppConfig {
        let cat = cloudstack();
        let mut c = AppConfig::starter(&cat, day("2017-02-15"));
        c.currency = Some("EUR".into());
        c.sla_tier = Some("gold".into());
        c.name = "Shop, \"quoted\" & ünïcödé".into();
        let t = c.tiers[2].key;
        c.add_component(&cat, t, Kind::Usage);
        let k = c.tiers[2].components.last().unwrap().key;
        // Invalid text survives the round trip too: the link restores what was on screen.
        c.set_field(&cat, t, k, Field::Quantity, "12.5x");
        c
    }

    fn strip_keys(c: &AppConfig) -> AppConfig {
        let mut c = c.clone();
        c.rekey();
        c
    }

    #[test]
    fn round_trip_restores_exactly() {
        let c = sample();
        let url = link("http://127.0.0.1:8080/?reseller=acme", &c);
        let (base, frag) = url.split_once('#').unwrap();
        assert_eq!(base, "http://127.0.0.1:8080/?reseller=acme");
        let back = from_fragment(frag).unwrap().unwrap();
        assert_eq!(back, strip_keys(&c));
        assert!(url.len() < 2_000, "{}", url.len());
    }

    /// Whatever the builder lets a customer type, at every limit at once, still makes a link
    /// that decodes (the builder and the decoder share their limits).
    #[test]
    fn the_largest_app_the_builder_allows_still_shares() {
        use crate::model::config::{APP_COMPONENTS_MAX, TIERS_MAX};
        let cat = cloudstack();
        let mut c = AppConfig::empty(&cat, day("2017-02-15"));
        c.name = "n".repeat(1000);
        c.name = c.name.chars().take(2 * APP_NAME_LEN_MAX).collect();
        for _ in 0..TIERS_MAX {
            c.add_tier();
        }
        for i in 0..APP_COMPONENTS_MAX {
            let t = c.tiers[i % TIERS_MAX].key;
            c.add_component(&cat, t, Kind::Compute);
        }
        for t in 0..TIERS_MAX {
            let key = c.tiers[t].key;
            c.rename_tier(key, &"é".repeat(500));
            for k in c.tiers[t]
                .components
                .iter()
                .map(|x| x.key)
                .collect::<Vec<_>>()
            {
                c.set_field(&cat, key, k, Field::Hours, &"9".repeat(500));
                c.set_field(&cat, key, k, Field::StoppedHours, &"9".repeat(500));
            }
        }
        assert_eq!(c.component_count(), APP_COMPONENTS_MAX);
        let encoded = encode(&c);
        assert!(encoded.len() <= ENCODED_LEN_MAX, "{}", encoded.len());
        assert_eq!(decode(&encoded).unwrap(), strip_keys(&c));
    }

    #[test]
    fn fragments_without_an_app() {
        assert_eq!(from_fragment(""), None);
        assert_eq!(from_fragment("#top"), None);
        assert!(from_fragment("#x=1&app=v1.e30").unwrap().is_err());
    }

    /// Each way a link can be broken gives its own error (and none panics).
    #[test]
    fn broken_links() {
        let good = encode(&sample());
        let json = |s: &str| format!("v1.{}", URL_SAFE_NO_PAD.encode(s));
        type Expect = fn(&ShareError) -> bool;
        let cases: Vec<(String, Expect)> = vec![
            (
                "v9.abc".into(),
                |e| matches!(e, ShareError::UnknownVersion(v) if v == "v9"),
            ),
            ("".into(), |e| matches!(e, ShareError::UnknownVersion(_))),
            ("v1.!!!".into(), |e| *e == ShareError::BadEncoding),
            (json("{"), |e| matches!(e, ShareError::BadContent(_))),
            (json("[]"), |e| matches!(e, ShareError::BadContent(_))),
            (json(r#"{"catalog_id":"x"}"#), |e| {
                matches!(e, ShareError::BadContent(_))
            }),
            (
                json(r#"{"catalog_id":"x","catalog_version":"1","at":"2017-02-30","tiers":[]}"#),
                |e| matches!(e, ShareError::BadContent(_)),
            ),
            (
                json(
                    r#"{"catalog_id":"x","catalog_version":"1","at":"2017-02-01","tiers":[],"evil":1}"#,
                ),
                |e| matches!(e, ShareError::BadContent(_)),
            ),
            (
                json(&format!(
                    r#"{{"catalog_id":"x","catalog_version":"1","at":"2017-02-01","tiers":[{}]}}"#,
                    [r#"{"name":"t","components":[]}"#; TIERS_MAX + 1].join(",")
                )),
                |e| matches!(e, ShareError::OverLimit(_)),
            ),
            (
                json(&format!(
                    r#"{{"catalog_id":"x","catalog_version":"1","at":"2017-02-01","tiers":[{{"name":"t","components":[{{"kind":"compute","product":"p","count":"{}"}}]}}]}}"#,
                    "9".repeat(50)
                )),
                |e| matches!(e, ShareError::OverLimit(_)),
            ),
            ("v1.".to_string() + &"A".repeat(ENCODED_LEN_MAX), |e| {
                *e == ShareError::TooLong
            }),
            (good[..good.len() - 7].to_string(), |e| {
                matches!(e, ShareError::BadContent(_) | ShareError::BadEncoding)
            }),
        ];
        for (text, ok) in cases {
            let e = decode(&text).unwrap_err();
            assert!(ok(&e), "{} -> {e:?}", &text[..text.len().min(60)]);
        }
    }

    /// A small deterministic fuzz: every prefix and many byte flips of a real link decode to
    /// a config or an error, never a panic. (The lead's fuzzer goes further.)
    #[test]
    fn garbage_never_panics() {
        let good = encode(&sample());
        for n in 0..good.len() {
            let _ = decode(&good[..n]);
        }
        let bytes = good.as_bytes();
        let alphabet = b"AZaz09-_.=!";
        let mut seed: u32 = 12345;
        for _ in 0..3_000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let mut b = bytes.to_vec();
            let i = (seed as usize >> 8) % b.len();
            b[i] = alphabet[(seed as usize >> 3) % alphabet.len()];
            if let Ok(s) = String::from_utf8(b) {
                let _ = decode(&s);
            }
        }
    }

    #[test]
    fn notices_about_other_catalogs() {
        let c = sample();
        assert_eq!(catalog_notice(&c, &c.catalog_id, &c.catalog_version), None);
        assert!(catalog_notice(&c, &c.catalog_id, "2099-01.1")
            .unwrap()
            .starts_with("Prices have changed since this link was made (version 2017-02.1 then"));
        assert!(catalog_notice(&c, "other", &c.catalog_version)
            .unwrap()
            .starts_with("This link was made for another price list (cloudstack-example)"));
    }

    /// Acme's storefront quotes in EUR only: a link in USD (made on the provider's storefront,
    /// or before resellers' catalogs dropped the provider's rates) shows its estimate in EUR,
    /// and says so, instead of "no exchange rate" beside the currency field and no estimate.
    #[test]
    fn a_link_in_a_currency_the_storefront_cannot_quote_is_shown_in_its_own() {
        let wholesale = cloudstack();
        let acme = pricing::reseller::publish(&wholesale, "acme").unwrap();
        let mut c = AppConfig::starter(&acme, day("2017-02-15"));
        c.currency = Some("USD".into());
        assert!(c.validate(&acme).quote.is_none(), "USD cannot be quoted");
        let notice = restore(&mut c, &acme).unwrap();
        assert_eq!(c.currency, None);
        assert_eq!(
            notice,
            "This link was made in USD; this storefront quotes in EUR only."
        );
        let v = c.validate(&acme);
        assert!(v.errors.is_empty(), "{:?}", v.errors);
        assert!(v.quote.is_some());
        // A currency the storefront quotes in stays, and a link of another version says both.
        let mut d = sample();
        d.catalog_version = "2016-12.1".into();
        assert_eq!(
            restore(&mut d, &wholesale).unwrap(),
            catalog_notice(&d, &wholesale.id, &wholesale.version).unwrap()
        );
        assert_eq!(d.currency.as_deref(), Some("EUR"));
        let mut e = sample();
        e.currency = Some("USD".into());
        e.catalog_version = "2016-12.1".into();
        let both = restore(&mut e, &acme).unwrap();
        assert!(
            both.starts_with("This link was made for another price list"),
            "{both}"
        );
        assert!(both.ends_with("quotes in EUR only."), "{both}");
    }
}
