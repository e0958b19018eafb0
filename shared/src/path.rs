//! Where in the input an error is: the five customer settings by name, and a quote component's field.
//!
//! Errors carry these instead of path strings, so that a caller (the storefront) puts a message
//! beside the field it is about by matching, never by parsing text back. Their `Display` is the
//! path as the error messages have always printed it (`quote.tiers[1].components[0].offering`).

use std::fmt;

/// A setting that changes prices, shared by quotes, accounts and the storefront's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Setting {
    Region,
    SlaTier,
    Currency,
    Term,
    TaxJurisdiction,
}

impl Setting {
    /// Every setting, in the order of the fields of quotes and of the storefront's config.
    pub const ALL: [Setting; 5] = [
        Setting::Region,
        Setting::SlaTier,
        Setting::Currency,
        Setting::Term,
        Setting::TaxJurisdiction,
    ];

    /// The field's name in quotes, accounts and the storefront's config (`sla_tier`).
    pub fn field(self) -> &'static str {
        match self {
            Setting::Currency => "currency",
            Setting::Region => "region",
            Setting::TaxJurisdiction => "tax_jurisdiction",
            Setting::SlaTier => "sla_tier",
            Setting::Term => "term",
        }
    }

    /// What the setting names, in words (`SLA tier`).
    pub fn what(self) -> &'static str {
        match self {
            Setting::Currency => "currency",
            Setting::Region => "region",
            Setting::TaxJurisdiction => "tax jurisdiction",
            Setting::SlaTier => "SLA tier",
            Setting::Term => "term",
        }
    }
}

/// Whose settings they are: a quote's, or one account's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsOwner {
    Quote,
    Account(String),
}

impl fmt::Display for SettingsOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsOwner::Quote => f.write_str("quote"),
            SettingsOwner::Account(id) => write!(f, "accounts[{id}]"),
        }
    }
}

/// A field of a quote component, as named in the quote's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentField {
    Offering,
    Product,
    Meter,
    StoppedHoursPerMonth,
    GbIn,
    GbOut,
}

impl ComponentField {
    pub fn name(self) -> &'static str {
        match self {
            ComponentField::Offering => "offering",
            ComponentField::Product => "product",
            ComponentField::Meter => "meter",
            ComponentField::StoppedHoursPerMonth => "stopped_hours_per_month",
            ComponentField::GbIn => "gb_in",
            ComponentField::GbOut => "gb_out",
        }
    }
}

/// One component of a quote (positions in `tiers` and in the tier's `components`), and the
/// field the error is about when it is about one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotePath {
    pub tier: usize,
    pub component: usize,
    pub field: Option<ComponentField>,
}

impl QuotePath {
    /// The same component, `field` of it.
    pub fn at(self, field: ComponentField) -> QuotePath {
        QuotePath {
            field: Some(field),
            ..self
        }
    }
}

impl fmt::Display for QuotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "quote.tiers[{}].components[{}]",
            self.tier, self.component
        )?;
        if let Some(field) = self.field {
            write!(f, ".{}", field.name())?;
        }
        Ok(())
    }
}
