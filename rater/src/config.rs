//! Step 0, configuration: the catalog, accounts book, issuer, limits and clock the protocol runs with, loaded once per process, and the versions stored before they price anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pricing::{AccountBook, Catalog, PeriodKind};

use crate::error::RaterError;
use crate::limits::{
    ACCOUNT_ID_BYTES_MAX, CLOSE_GRACE_HOURS, COMMITTED_ITEM_BYTES_MAX, IN_PROGRESS_WAIT_MS_MAX,
    ISSUER_BYTES_MAX, LEASE_S, PAYLOAD_BYTES_MAX,
};
use crate::model::ConfigKind;
use crate::store::Store;

/// A clock in epoch seconds; injected so that tests can expire leases.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    })
}

/// Everything the handler needs besides the store: loaded once per process.
pub struct RaterConfig {
    pub catalog: Catalog,
    pub accounts: AccountBook,
    /// Who numbers final invoices (`RATECARD_ISSUER`).
    pub issuer: String,
    pub lease_s: i64,
    pub in_progress_wait_ms_max: u64,
    pub payload_bytes_max: usize,
    /// Record ids a batch holds in memory before spilling a sorted run to a temporary file
    /// ([`crate::limits::ID_RUN_ENTRIES`]; tests make it small to exercise the spill).
    pub id_run_entries: usize,
    /// Bytes of a `#COMMITTED` item batches may use ([`COMMITTED_ITEM_BYTES_MAX`]; tests make
    /// it small to fill a partition quickly).
    pub committed_item_bytes_max: usize,
    pub clock: Clock,
    /// IAM principals (ARNs, or patterns ending in `*`) and their roles and tenants
    /// (`RATECARD_OPERATORS`, `RATECARD_UPLOADERS`, `RATECARD_RESELLERS`; see `crate::auth`).
    pub principals: crate::auth::Principals,
    /// How long after a period ends the scheduled close waits for late exports
    /// (`RATECARD_CLOSE_GRACE_HOURS`, [`CLOSE_GRACE_HOURS`] when unset).
    pub close_grace_hours: i64,
    /// The bucket nightly exports are dropped in (`RATECARD_EXPORTS_BUCKET`): what
    /// `GET /exports?key=` looks in when no `bucket` is given, and the only bucket it reads.
    pub exports_bucket: Option<String>,
    /// Account id -> the kind of its billing periods.
    pub(crate) account_kinds: HashMap<String, PeriodKind>,
    /// Account id -> its position in the book.
    account_index: HashMap<String, usize>,
    /// Reseller id -> the catalog it publishes ([`pricing::publish`]): its customers are
    /// invoiced with it, as its storefront estimates with it.
    published: HashMap<String, Catalog>,
    /// A reseller's own account id -> the reseller it is (the account's `resells`).
    billed_resellers: HashMap<String, String>,
    /// Issuer id -> its logo, parsed once (`Issuer::logo_svg`).
    logos: HashMap<String, Arc<crate::logo::Logo>>,
    config_stored: AtomicBool,
}

impl RaterConfig {
    /// Checks what the key design relies on: ids that cannot be confused inside a key.
    pub fn new(
        catalog: Catalog,
        accounts: AccountBook,
        issuer: &str,
    ) -> Result<RaterConfig, RaterError> {
        // The importers' settings are checked at load, like the rest of the catalog: a bad
        // mapping never waits for the first export to be found.
        pricing::import::ImportOptions::of_catalog(&catalog)
            .map_err(|e| RaterError::Config(format!("catalog: {e}")))?;
        accounts.validate(&catalog).map_err(|e| {
            RaterError::Config(
                format!("accounts: {e}").replace("invalid catalog", "invalid accounts"),
            )
        })?;
        if issuer.is_empty() || issuer.contains('#') {
            return Err(RaterError::Config(format!(
                "issuer `{issuer}` must be non-empty and without `#`"
            )));
        }
        if issuer.len() > ISSUER_BYTES_MAX {
            return Err(RaterError::Config(format!(
                "issuer `{}` ({} bytes) is longer than the {ISSUER_BYTES_MAX} bytes allowed (it prefixes every invoice number)",
                pricing::error::shown(issuer),
                issuer.len()
            )));
        }
        for a in &accounts.accounts {
            if a.id.len() > ACCOUNT_ID_BYTES_MAX {
                return Err(RaterError::Config(format!(
                    "account id `{}` ({} bytes) is longer than the {ACCOUNT_ID_BYTES_MAX} bytes allowed (it is part of storage keys)",
                    pricing::error::shown(&a.id),
                    a.id.len()
                )));
            }
            if a.id.is_empty() || a.id.contains('#') {
                return Err(RaterError::Config(format!(
                    "account id `{}` must be non-empty and without `#` (it is part of storage keys)",
                    a.id
                )));
            }
        }
        let published = published_catalogs(&catalog, issuer)?;
        let mut logos = HashMap::new();
        for (i, is) in accounts.issuers.iter().enumerate() {
            if let Some(svg) = &is.logo_svg {
                let logo = crate::logo::Logo::parse(svg).map_err(|e| {
                    RaterError::Config(format!(
                        "accounts: $.issuers[{i}].logo_svg (issuer `{}`): {e}",
                        is.id
                    ))
                })?;
                logos.insert(is.id.clone(), Arc::new(logo));
            }
        }
        let billed_resellers = accounts
            .accounts
            .iter()
            .filter_map(|a| a.resells.as_ref().map(|r| (a.id.clone(), r.clone())))
            .collect();
        let account_index = accounts
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        let account_kinds = accounts
            .accounts
            .iter()
            .map(|a| (a.id.clone(), a.billing_period))
            .collect();
        Ok(RaterConfig {
            catalog,
            accounts,
            issuer: issuer.to_string(),
            lease_s: LEASE_S,
            in_progress_wait_ms_max: IN_PROGRESS_WAIT_MS_MAX,
            payload_bytes_max: PAYLOAD_BYTES_MAX,
            id_run_entries: crate::limits::ID_RUN_ENTRIES,
            committed_item_bytes_max: COMMITTED_ITEM_BYTES_MAX,
            clock: system_clock(),
            principals: crate::auth::Principals::default(),
            close_grace_hours: CLOSE_GRACE_HOURS,
            exports_bucket: None,
            account_kinds,
            account_index,
            published,
            billed_resellers,
            logos,
            config_stored: AtomicBool::new(false),
        })
    }

    /// Parses a catalog and accounts file pair.
    pub fn from_json(
        catalog_json: &str,
        accounts_json: &str,
        issuer: &str,
    ) -> Result<RaterConfig, RaterError> {
        let catalog = Catalog::from_json(catalog_json)
            .map_err(|e| RaterError::Config(format!("catalog: {e}")))?;
        let accounts: AccountBook = pricing::parse_json(accounts_json).map_err(|e| {
            RaterError::Config(
                format!("accounts: {}", e).replace("invalid catalog", "invalid accounts"),
            )
        })?;
        RaterConfig::new(catalog, accounts, issuer)
    }

    /// The account of the book with this id.
    pub fn account(&self, id: &str) -> Option<&pricing::Account> {
        self.account_index
            .get(id)
            .map(|&i| &self.accounts.accounts[i])
    }

    /// The account of the book with this id, or `UnknownAccount` naming the accounts version.
    pub fn known_account(&self, id: &str) -> Result<&pricing::Account, RaterError> {
        self.account(id).ok_or_else(|| RaterError::UnknownAccount {
            account: id.to_string(),
            accounts_version: self.accounts.version.clone(),
        })
    }

    /// The catalog `acc` is invoiced with: its reseller's published catalog for a reseller's
    /// customer, the wholesale catalog for the provider's own.
    pub fn catalog_for(&self, acc: &pricing::Account) -> &Catalog {
        acc.reseller
            .as_ref()
            .and_then(|r| self.published.get(r))
            .unwrap_or(&self.catalog)
    }

    /// `acc` as the document priced with catalog `catalog_id` billed it: under the reseller
    /// whose published catalog that is (`<catalog>@<reseller>`), or as the provider's own
    /// customer. A customer the book moved to another reseller (or to or from the provider)
    /// since keeps its old documents' issuer, series, catalog and currency: a correction of
    /// one prices and numbers as the document did, whoever bills the account now. Refused
    /// when that reseller is no longer published (nothing could price the correction).
    pub fn as_billed<'a>(
        &'a self,
        acc: &'a pricing::Account,
        catalog_id: &str,
    ) -> Result<std::borrow::Cow<'a, pricing::Account>, RaterError> {
        let reseller = reseller_of_catalog(catalog_id);
        if reseller == acc.reseller.as_deref() {
            return Ok(std::borrow::Cow::Borrowed(acc));
        }
        if let Some(r) = reseller.filter(|r| !self.published.contains_key(*r)) {
            return Err(RaterError::Config(format!(
                "account `{}`: a document was priced with catalog `{catalog_id}` of reseller `{r}`, which this catalog no longer publishes; add the reseller back to correct it",
                acc.id
            )));
        }
        Ok(std::borrow::Cow::Owned(pricing::Account {
            reseller: reseller.map(str::to_string),
            ..acc.clone()
        }))
    }

    /// The currency `acc` is invoiced in: its own, else its catalog's (a reseller's customer
    /// is invoiced in its reseller's currency, not the wholesale catalog's).
    pub fn invoice_currency(&self, acc: &pricing::Account) -> String {
        acc.currency
            .clone()
            .unwrap_or_else(|| self.catalog_for(acc).currency.code.clone())
    }

    /// The logo of issuer `id`, when the accounts file gives it one.
    pub fn logo(&self, id: &str) -> Option<Arc<crate::logo::Logo>> {
        self.logos.get(id).cloned()
    }

    /// Who numbers `acc`'s invoices and notes: its reseller (its own gapless series) for a
    /// reseller's customer, the deployment's issuer for the provider's own.
    pub fn issuer_for<'a>(&'a self, acc: &'a pricing::Account) -> &'a str {
        acc.reseller.as_deref().unwrap_or(&self.issuer)
    }

    /// The reseller `account` is, when it is a reseller's own account with the provider.
    pub fn billed_reseller(&self, account: &str) -> Option<&str> {
        self.billed_resellers.get(account).map(String::as_str)
    }

    /// The reseller whose tenant `account` is in: its customer's reseller, or the reseller it
    /// is; `None` for the provider's direct customers and accounts the book does not hold.
    pub fn tenant_of(&self, account: &str) -> Option<&str> {
        self.account(account)
            .and_then(|a| a.reseller.as_deref().or(a.resells.as_deref()))
    }

    /// The reseller whose tenant a document of `account` priced with catalog `catalog_id` is
    /// in: the reseller that issued it to its customer (its published catalog's), or the one
    /// whose own account it bills. Not the account's tenant now: a customer the book moved to
    /// another reseller keeps its earlier documents with the one that issued them.
    pub fn document_tenant<'a>(&'a self, account: &str, catalog_id: &'a str) -> Option<&'a str> {
        reseller_of_catalog(catalog_id)
            .or_else(|| self.account(account).and_then(|a| a.resells.as_deref()))
    }

    /// The reseller's own account with the provider (`resells`).
    pub fn account_of_reseller(&self, reseller: &str) -> Option<&pricing::Account> {
        self.accounts
            .accounts
            .iter()
            .find(|a| a.resells.as_deref() == Some(reseller))
    }

    /// The customers of `reseller`, in the book's order.
    pub fn customers_of<'a>(
        &'a self,
        reseller: &'a str,
    ) -> impl Iterator<Item = &'a pricing::Account> + 'a {
        self.accounts
            .accounts
            .iter()
            .filter(move |a| a.reseller.as_deref() == Some(reseller))
    }

    /// The accounts whose balance marks a period of `account` open when usage first comes
    /// into it ([`crate::model::Balance::open`]): the account, and for a reseller's customer
    /// billed by the same kind of period, its reseller's own account (whose statement of that
    /// period bills the usage at wholesale).
    pub fn open_marked(&self, account: &str) -> Vec<String> {
        let mut out = vec![account.to_string()];
        if let Some(acc) = self.account(account) {
            out.extend(self.statement_owner(acc.reseller.as_deref(), acc.billing_period));
        }
        out
    }

    /// The reseller's own account whose statements bill a customer's periods of `kind` at
    /// wholesale when `reseller` bills them: when it is billed by the same kind of period (else
    /// its statements cover no such period).
    pub fn statement_owner(&self, reseller: Option<&str>, kind: PeriodKind) -> Option<String> {
        let own = self.account_of_reseller(reseller?)?;
        (own.billing_period == kind).then(|| own.id.clone())
    }

    /// The reseller that issued final invoice or note `number` (`<issuer>-<n>`, `<issuer>-N<n>`:
    /// a reseller numbers its customers' documents in its own series), `None` for the
    /// provider's own series or a reseller the catalog no longer publishes.
    pub fn reseller_of_number(&self, number: &str) -> Option<&str> {
        let (issuer, _) = number.rsplit_once('-')?;
        self.published
            .get_key_value(issuer)
            .map(|(k, _)| k.as_str())
    }

    /// Whether the catalog publishes any reseller's catalog.
    pub fn has_resellers(&self) -> bool {
        !self.published.is_empty()
    }

    pub fn now_s(&self) -> i64 {
        (self.clock)()
    }
}

/// The reseller whose published catalog `catalog_id` names (`pricing::publish` names it
/// `<catalog>@<reseller>`), `None` for the wholesale catalog itself.
pub fn reseller_of_catalog(catalog_id: &str) -> Option<&str> {
    catalog_id.rsplit_once('@').map(|(_, r)| r)
}

/// Each reseller's published catalog, by reseller id. A reseller id equal to the issuer is
/// refused: a reseller numbers its customers' invoices in its own series, named by its id.
fn published_catalogs(
    catalog: &Catalog,
    issuer: &str,
) -> Result<HashMap<String, Catalog>, RaterError> {
    let mut published = HashMap::new();
    // A published catalog is named `<catalog>@<reseller>`, and a document's catalog id names
    // the reseller that billed it (`reseller_of_catalog`): one `@` only.
    if catalog.id.contains('@') {
        return Err(RaterError::Config(format!(
            "catalog id `{}` contains `@`, which names a reseller's published catalog",
            catalog.id
        )));
    }
    for r in &catalog.resellers {
        if r.id.contains('@') {
            return Err(RaterError::Config(format!(
                "catalog: reseller id `{}` contains `@`, which separates it from the catalog's id",
                r.id
            )));
        }
        if r.id == issuer {
            return Err(RaterError::Config(format!(
                "issuer `{issuer}` is also a reseller's id: their invoice numbers would share a series"
            )));
        }
        let p = pricing::publish(catalog, &r.id)
            .map_err(|e| RaterError::Config(format!("catalog: reseller {}: {e}", r.id)))?;
        published.insert(r.id.clone(), p);
    }
    Ok(published)
}

/// Stores the catalog and accounts versions this process prices with (once per process), so
/// that every invoice names a version that can be read back; refused if a version was stored
/// before with other content.
pub async fn ensure_config_stored<S: Store>(
    store: &S,
    config: &RaterConfig,
) -> Result<(), RaterError> {
    if config.config_stored.load(Ordering::Acquire) {
        return Ok(());
    }
    put_config_versions(store, config, false).await?;
    config.config_stored.store(true, Ordering::Release);
    Ok(())
}

/// Stores `config`'s catalog and accounts as versions (refused if a version was stored before
/// with other content), and makes them the current ones when `make_current` (what
/// `ratecard publish-config` does; a function started without a pinned version loads those).
pub async fn put_config_versions<S: Store>(
    store: &S,
    config: &RaterConfig,
    make_current: bool,
) -> Result<(), RaterError> {
    let accounts = serde_json::to_string(&config.accounts).expect("accounts serialize");
    store
        .put_config(
            ConfigKind::Catalog,
            &config.catalog.version,
            &config.catalog.to_json(),
            make_current,
        )
        .await?;
    store
        .put_config(
            ConfigKind::Accounts,
            &config.accounts.version,
            &accounts,
            make_current,
        )
        .await?;
    Ok(())
}
