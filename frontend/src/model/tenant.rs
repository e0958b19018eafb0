//! Which storefront a visitor sees: the reseller index, resolution by hostname (or `?reseller=`
//! in development builds), and the brand (name, logo, colours) made safe to put into the page.
//!
//! The app's choice is a convenience, not a boundary: what a hostname can fetch at all is
//! decided where files are served (the CDN's tenant router, `infra/cdn/tenant-router.js`, which
//! the local static server runs too). On a reseller's hostname the index names only that
//! reseller and every other catalog and brand answers 404, whatever this module chooses.

use std::collections::BTreeMap;

use pricing::catalog::Brand;
use serde::{Deserialize, Serialize};

/// The id of the provider's own storefront (the catalog published without any reseller's terms).
pub const DIRECT: &str = "direct";

/// Longest reseller id accepted from a URL. Ids are short slugs; a longer one is not an id.
pub const RESELLER_ID_LEN_MAX: usize = 64;

/// The index served as `resellers.json`: hostname -> reseller id, and the ids that have a
/// published catalog. It deliberately holds no names, brands or terms: every visitor of every
/// storefront downloads it, and a reseller's customers must not learn about other resellers'
/// deals. Each reseller's brand travels inside its own published catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResellerIndex {
    pub schema_version: u32,
    /// Lower-case hostname -> reseller id.
    #[serde(default)]
    pub hostnames: BTreeMap<String, String>,
    /// Ids with a published catalog at `catalogs/<id>.json`, [`DIRECT`] included.
    pub storefronts: Vec<String>,
}

/// Which kind of build the app is: whether `?reseller=` may choose the storefront.
///
/// A development build (debug assertions on: `trunk serve`, `frontend/build.sh --dev`) lets a
/// developer preview any reseller from one host. A production build (`trunk build --release`,
/// what `frontend/build.sh` ships) ignores the parameter: the hostname decides, so a link with
/// `?reseller=` can never show a reseller's customers anything but their own storefront.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildKind {
    Development,
    Production,
}

impl BuildKind {
    /// The kind of the running build.
    pub const CURRENT: BuildKind = if cfg!(debug_assertions) {
        BuildKind::Development
    } else {
        BuildKind::Production
    };
}

/// The storefront chosen for this visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storefront {
    pub id: String,
    /// Path of the published catalog, relative to the app.
    pub catalog_path: String,
}

/// Why no storefront could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// `?reseller=` named an id that has no published catalog.
    #[error("there is no storefront called `{0}`")]
    UnknownReseller(String),
}

/// Whether `id` has the shape of a reseller id (lower-case slug); anything else is refused
/// before it reaches a path, so a URL cannot make the app fetch an arbitrary file.
pub fn is_reseller_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= RESELLER_ID_LEN_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Chooses the storefront: in a development build `?reseller=<id>` first (previews), then the
/// hostname, then the provider's own storefront; a production build never reads `?reseller=`.
/// An explicit id that is unknown is an error, never a silent fallback: a developer must notice
/// a mistyped link.
pub fn resolve(
    index: &ResellerIndex,
    hostname: &str,
    query_reseller: Option<&str>,
    build: BuildKind,
) -> Result<Storefront, TenantError> {
    let query = match build {
        BuildKind::Development => query_reseller.map(str::trim).filter(|s| !s.is_empty()),
        BuildKind::Production => None,
    };
    let id = match query {
        Some(q) => {
            if !is_reseller_id(q) || !index.storefronts.iter().any(|s| s == q) {
                return Err(TenantError::UnknownReseller(shorten(q)));
            }
            q.to_string()
        }
        None => index
            .hostnames
            .get(&hostname.trim_end_matches('.').to_ascii_lowercase())
            .filter(|id| is_reseller_id(id) && index.storefronts.contains(id))
            .cloned()
            .unwrap_or_else(|| DIRECT.to_string()),
    };
    Ok(Storefront {
        catalog_path: format!("catalogs/{id}.json"),
        id,
    })
}

/// A value from the URL, cut short for display in the error page.
fn shorten(s: &str) -> String {
    s.chars().take(RESELLER_ID_LEN_MAX).collect()
}

/// The brand as the page uses it: colours checked, logo URL checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: String,
    pub logo_url: Option<String>,
    /// CSS custom properties, `--brand-primary: #0b5394;` and so on.
    pub css_vars: String,
}

/// Colour roles the stylesheet reads, in the order they are written.
pub const COLOR_ROLES: [&str; 4] = ["primary", "accent", "background", "text"];

/// Whether `c` is a hex colour (`#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`). Colours come from a
/// catalog and go into a `style` attribute; anything else could inject CSS, so it is dropped.
pub fn is_hex_color(c: &str) -> bool {
    c.strip_prefix('#').is_some_and(|h| {
        matches!(h.len(), 3 | 4 | 6 | 8) && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether a logo URL is a same-site path or an https URL (no `javascript:`, no `data:`).
pub fn is_safe_logo_url(u: &str) -> bool {
    let ok_chars = !u.is_empty()
        && u.len() <= 512
        && !u
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '<' || c == '>');
    ok_chars && ((u.starts_with('/') && !u.starts_with("//")) || u.starts_with("https://"))
}

/// The theme of a catalog: its brand when published for a reseller, else the catalog's name and
/// the stylesheet's default colours.
pub fn theme(brand: Option<&Brand>, catalog_name: &str) -> Theme {
    let Some(b) = brand else {
        return Theme {
            name: catalog_name.to_string(),
            logo_url: None,
            css_vars: String::new(),
        };
    };
    let mut css = String::new();
    for role in COLOR_ROLES {
        if let Some(c) = b.colors.get(role).filter(|c| is_hex_color(c)) {
            css.push_str(&format!("--brand-{role}: {c}; "));
        }
    }
    Theme {
        name: b.name.clone(),
        logo_url: Some(b.logo_url.clone()).filter(|u| is_safe_logo_url(u)),
        css_vars: css.trim_end().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ResellerIndex {
        ResellerIndex {
            schema_version: 1,
            hostnames: [("cloud.acme.example".to_string(), "acme".to_string())].into(),
            storefronts: vec![DIRECT.into(), "acme".into()],
        }
    }

    fn check(build: BuildKind, host: &str, query: Option<&str>, expect: Result<&str, &str>) {
        let got = resolve(&index(), host, query, build);
        match expect {
            Ok(id) => {
                let s = got.unwrap();
                assert_eq!(s.id, id, "{build:?} {host} {query:?}");
                assert_eq!(s.catalog_path, format!("catalogs/{id}.json"));
            }
            Err(bad) => assert_eq!(got, Err(TenantError::UnknownReseller(bad.into()))),
        }
    }

    #[test]
    fn development_builds_honour_the_query() {
        use BuildKind::Development as D;
        check(D, "127.0.0.1", None, Ok(DIRECT));
        check(D, "cloud.acme.example", None, Ok("acme"));
        check(D, "CLOUD.ACME.EXAMPLE.", None, Ok("acme"));
        check(D, "127.0.0.1", Some("acme"), Ok("acme"));
        check(D, "cloud.acme.example", Some("direct"), Ok(DIRECT));
        check(D, "127.0.0.1", Some(""), Ok(DIRECT));
        check(D, "127.0.0.1", Some("globex"), Err("globex"));
        check(
            D,
            "127.0.0.1",
            Some("../../etc/passwd"),
            Err("../../etc/passwd"),
        );
        check(D, "127.0.0.1", Some("Acme"), Err("Acme"));
    }

    #[test]
    fn production_builds_ignore_the_query_and_go_by_hostname() {
        use BuildKind::Production as P;
        check(P, "127.0.0.1", None, Ok(DIRECT));
        check(P, "cloud.acme.example", None, Ok("acme"));
        check(P, "CLOUD.ACME.EXAMPLE.", None, Ok("acme"));
        // The overrides a reseller's customer could try: none moves the storefront.
        check(P, "cloud.acme.example", Some("direct"), Ok("acme"));
        check(P, "cloud.acme.example", Some("nimbus"), Ok("acme"));
        check(
            P,
            "cloud.acme.example",
            Some("../catalogs/direct"),
            Ok("acme"),
        );
        check(P, "127.0.0.1", Some("acme"), Ok(DIRECT));
        // Not even an unknown id is looked at: no error page, the hostname's storefront.
        check(P, "127.0.0.1", Some("globex"), Ok(DIRECT));
    }

    #[test]
    fn the_running_build_is_the_one_its_profile_says() {
        // `cargo test` builds with debug assertions; a release build is the production kind.
        assert_eq!(
            BuildKind::CURRENT == BuildKind::Development,
            cfg!(debug_assertions)
        );
    }

    #[test]
    fn an_index_entry_without_a_catalog_falls_back_to_direct() {
        let mut i = index();
        i.hostnames.insert("x.example".into(), "gone".into());
        for build in [BuildKind::Development, BuildKind::Production] {
            assert_eq!(resolve(&i, "x.example", None, build).unwrap().id, DIRECT);
        }
    }

    #[test]
    fn the_index_a_reseller_host_is_served_resolves_to_that_reseller() {
        // What the tenant router answers on acme's host: acme's hostnames, acme's storefront.
        let served = ResellerIndex {
            schema_version: 1,
            hostnames: [("cloud.acme.example".to_string(), "acme".to_string())].into(),
            storefronts: vec!["acme".into()],
        };
        let got = resolve(
            &served,
            "cloud.acme.example",
            Some("direct"),
            BuildKind::Production,
        );
        assert_eq!(got.unwrap().id, "acme");
        // In a development build against such an index, another storefront is simply unknown.
        let got = resolve(
            &served,
            "cloud.acme.example",
            Some("nimbus"),
            BuildKind::Development,
        );
        assert_eq!(got, Err(TenantError::UnknownReseller("nimbus".into())));
    }

    #[test]
    fn colours_and_logos_are_checked() {
        for ok in ["#fff", "#0b5394", "#0b539480", "#ABCD"] {
            assert!(is_hex_color(ok), "{ok}");
        }
        for bad in ["red", "#12", "#0b5394; background:url(x)", "#ggg", ""] {
            assert!(!is_hex_color(bad), "{bad}");
        }
        for ok in ["/brands/acme/logo.svg", "https://cdn.example/logo.png"] {
            assert!(is_safe_logo_url(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "data:image/svg+xml,<svg>",
            "//evil.example/x.svg",
            "http://plain.example/x.svg",
            "/a b.svg",
            "",
        ] {
            assert!(!is_safe_logo_url(bad), "{bad}");
        }
    }

    #[test]
    fn theme_keeps_only_safe_values() {
        let brand = Brand {
            name: "Acme Cloud".into(),
            logo_url: "javascript:alert(1)".into(),
            colors: [
                ("primary".to_string(), "#0b5394".to_string()),
                ("accent".to_string(), "red;}body{display:none".to_string()),
            ]
            .into(),
        };
        let t = theme(Some(&brand), "ignored");
        assert_eq!(t.name, "Acme Cloud");
        assert_eq!(t.logo_url, None);
        assert_eq!(t.css_vars, "--brand-primary: #0b5394;");
        assert_eq!(theme(None, "Direct").name, "Direct");
    }
}
