//! The static files the storefront fetches: one published catalog per storefront and the
//! hostname index, built from the provider's wholesale catalog.
//!
//! Every storefront's price list is written twice: `catalogs/<id>.json`, the current one the app
//! opens with, and `catalogs/<id>/<version>.json`, an immutable copy under its version. Share
//! links name the version they were made with; the deployment keeps every version's file (its
//! upload never deletes under `catalogs/<id>/`), so an old link can be replayed with the prices
//! it was made with. Withdrawing a version is deleting its file: the app then says so.
//!
//! Decision: the provider's own ("direct") storefront sells at the wholesale catalog's prices,
//! which are the provider's list prices; what must not reach any browser is the reseller
//! overlays (markups, hostnames, hidden products), so the direct catalog is the wholesale one
//! with `resellers` removed. Each reseller's catalog is [`pricing::publish`]'s output and holds
//! no wholesale price.

use pricing::{Catalog, PricingError};

use super::tenant::{is_reseller_id, ResellerIndex, DIRECT};

/// The index's file name, beside `index.html`.
pub const INDEX_FILE: &str = "resellers.json";

/// Why the storefront files could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("reseller id `{0}` cannot name a storefront (lower-case letters, digits, `-`, `_`; not `direct`)")]
    BadResellerId(String),
    #[error("hostname `{hostname}` is claimed by both `{first}` and `{second}`")]
    HostnameTwice {
        hostname: String,
        first: String,
        second: String,
    },
    #[error("catalog version `{0}` cannot name a file (letters, digits, `.`, `_`, `-`, starting with a letter or digit, at most 64)")]
    BadVersion(String),
    #[error(transparent)]
    Pricing(#[from] PricingError),
}

/// Whether a catalog version can name its published file (`catalogs/<id>/<version>.json`), as
/// the tenant router (`infra/cdn/tenant-router.js`, `VERSION_FILE`) lets it through.
pub fn is_version_name(v: &str) -> bool {
    v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Where a storefront's price list of one version is published.
pub fn version_path(storefront: &str, version: &str) -> String {
    format!("catalogs/{storefront}/{version}.json")
}

/// The provider's own storefront catalog: the wholesale catalog without reseller overlays and
/// without single customers' discounts ([`pricing::reseller::publish_direct`]).
pub fn direct_catalog(catalog: &Catalog) -> Catalog {
    pricing::reseller::publish_direct(catalog)
}

/// A storefront catalog as the public file it is served as: without the importer's map of
/// project ids to billed accounts (`mappings.ceilometer.account_by_project`), which names the
/// provider's customers and is the rater's business, not a visitor's. (The invoice preview
/// then shows a Ceilometer export's projects as its accounts.)
fn public_json(mut catalog: Catalog) -> String {
    if let Some(ceilometer) = catalog
        .mappings
        .as_mut()
        .and_then(|m| m.get_mut("ceilometer"))
        .and_then(|c| c.as_object_mut())
    {
        ceilometer.remove("account_by_project");
    }
    catalog.to_json()
}

/// Every file to write, as (path relative to the site root, content).
pub fn site_files(catalog: &Catalog) -> Result<Vec<(String, String)>, PublishError> {
    if !is_version_name(&catalog.version) {
        return Err(PublishError::BadVersion(catalog.version.clone()));
    }
    let mut index = ResellerIndex {
        schema_version: 1,
        hostnames: Default::default(),
        storefronts: vec![DIRECT.to_string()],
    };
    let mut files = vec![(
        format!("catalogs/{DIRECT}.json"),
        public_json(direct_catalog(catalog)),
    )];
    for r in &catalog.resellers {
        if !is_reseller_id(&r.id) || r.id == DIRECT {
            return Err(PublishError::BadResellerId(r.id.clone()));
        }
        for h in &r.hostnames {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            if let Some(first) = index.hostnames.insert(h.clone(), r.id.clone()) {
                return Err(PublishError::HostnameTwice {
                    hostname: h,
                    first,
                    second: r.id.clone(),
                });
            }
        }
        index.storefronts.push(r.id.clone());
        files.push((
            format!("catalogs/{}.json", r.id),
            public_json(pricing::publish(catalog, &r.id)?),
        ));
    }
    // The immutable copies, under the version (the app fetches one when a link pins it).
    let versioned: Vec<(String, String)> = files
        .iter()
        .zip(&index.storefronts)
        .map(|((_, json), id)| (version_path(id, &catalog.version), json.clone()))
        .collect();
    files.extend(versioned);
    files.push((
        INDEX_FILE.to_string(),
        serde_json::to_string_pretty(&index).expect("the index serializes"),
    ));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{cloudstack, openstack};
    use pricing::reseller::wholesale_prices;

    #[test]
    fn files_for_the_example_catalog() {
        let c = cloudstack();
        let files = site_files(&c).unwrap();
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        let v = &c.version;
        assert_eq!(
            paths,
            [
                "catalogs/direct.json".to_string(),
                "catalogs/acme.json".into(),
                "catalogs/nimbus.json".into(),
                format!("catalogs/direct/{v}.json"),
                format!("catalogs/acme/{v}.json"),
                format!("catalogs/nimbus/{v}.json"),
                "resellers.json".into(),
            ]
        );
        // Each version's copy is the current file, byte for byte.
        for (current, pinned) in files[..3].iter().zip(&files[3..6]) {
            assert_eq!(current.1, pinned.1, "{}", pinned.0);
        }
        let index: ResellerIndex = serde_json::from_str(&files[6].1).unwrap();
        assert_eq!(index.storefronts, ["direct", "acme", "nimbus"]);
        assert_eq!(index.hostnames["acme.localhost"], "acme");
        assert_eq!(index.hostnames["nimbus.localhost"], "nimbus");
        // The index names no brand and no terms.
        for secret in ["Acme Cloud", "Nimbus Hosting", "markup"] {
            assert!(!files[6].1.contains(secret), "{secret}");
        }
    }

    #[test]
    fn the_direct_catalog_carries_no_reseller_terms() {
        let files = site_files(&cloudstack()).unwrap();
        let direct = Catalog::from_json(&files[0].1).unwrap();
        assert!(direct.resellers.is_empty());
        for secret in ["acme", "nimbus", "markup", "global_pct", "hidden_products"] {
            assert!(!files[0].1.contains(secret), "{secret}");
        }
    }

    #[test]
    fn a_reseller_catalog_holds_no_wholesale_price() {
        let c = cloudstack();
        let files = site_files(&c).unwrap();
        let acme = Catalog::from_json(&files[1].1).unwrap();
        let wholesale = wholesale_prices(&c);
        let retail = wholesale_prices(&acme);
        assert!(!retail.is_empty());
        for p in &retail {
            assert!(
                !wholesale.contains(p),
                "wholesale price {p} in acme's catalog"
            );
        }
        assert_eq!(acme.currency.code, "EUR");
        assert!(acme.product("isos").is_none());
        assert_eq!(acme.brand.as_ref().unwrap().name, "Acme Cloud");
    }

    #[test]
    fn no_published_catalog_names_the_providers_customers_by_project() {
        // The reseller example, with the Ceilometer settings of a provider that bills several
        // projects to one customer.
        let mut c = cloudstack();
        let mappings = c.mappings.get_or_insert_with(|| serde_json::json!({}));
        mappings["ceilometer"] = serde_json::json!({
            "account_by_project": { "proj-7f3a": "customer-globex" },
            "region": "eu-west",
        });
        let files = site_files(&c).unwrap();
        assert_eq!(
            files.len(),
            7,
            "direct, acme, nimbus, their versions, the index"
        );
        for (path, json) in &files {
            for secret in ["proj-7f3a", "customer-globex", "account_by_project"] {
                assert!(!json.contains(secret), "{secret} in {path}");
            }
        }
        // The rest of the importer's settings stay: the invoice preview imports with them.
        let direct = Catalog::from_json(&files[0].1).unwrap();
        assert_eq!(direct.mappings.unwrap()["ceilometer"]["region"], "eu-west");
    }

    #[test]
    fn bad_overlays_are_refused() {
        let mut c = cloudstack();
        let mut twin = c.resellers[0].clone();
        twin.id = "twin".into();
        c.resellers.push(twin);
        assert!(matches!(
            site_files(&c),
            Err(PublishError::HostnameTwice { .. })
        ));
        let mut c = cloudstack();
        c.resellers[0].id = "direct".into();
        assert_eq!(
            site_files(&c),
            Err(PublishError::BadResellerId("direct".into()))
        );
        assert!(site_files(&openstack()).is_ok());
    }

    #[test]
    fn a_version_that_cannot_name_a_file_is_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "v 1", "v%2f", &"9".repeat(65)] {
            let mut c = cloudstack();
            c.version = bad.to_string();
            assert_eq!(
                site_files(&c),
                Err(PublishError::BadVersion(bad.into())),
                "{bad}"
            );
        }
        for good in ["2017-02.1", "v2", "2026_12_01-rc.1"] {
            assert!(is_version_name(good), "{good}");
        }
    }
}
