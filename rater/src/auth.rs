//! Who may do what: the caller's role and tenant, read from the Function URL's IAM request context and the deployment's lists of principals, and the actions each allows.
//!
//! Enforced where requests are served (`event`), never in a client. Three roles:
//! - an **uploader** (the exporters' IAM principals, `RATECARD_UPLOADERS`) rates interim batches
//!   and nothing else. When the deployment lists no uploaders, every IAM-authenticated caller
//!   that is not listed otherwise is one (the Function URL's `AWS_IAM` auth and its invoke
//!   permission are then the gate, as before tenants existed);
//! - a **reseller** (`RATECARD_RESELLERS`, `reseller-id=principal` pairs) reads the invoices,
//!   notes and histories of its own customers, of its own account with the provider (its
//!   wholesale statements), and its margin report: nothing of another reseller's or of the
//!   provider's direct customers, and it writes nothing;
//! - an **operator** (`RATECARD_OPERATORS`) does everything: finalizes, closes periods, records
//!   payments, re-rates closed periods, overrides the rule that a period is finalized only
//!   after it ends, and reads every account.
//!
//! A listed principal that is in no list (when uploaders are listed), or an unauthenticated
//! one, is refused everything with 403 before anything is read or written. Direct invocations
//! (the schedule, the fan-out) act as the operator: only they can invoke the function directly
//! (its resource policy).

use serde_json::Value;

use crate::error::RaterError;

/// What a caller may do, and for which tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Uploader,
    /// A reseller's principal: reads its own tenant's documents only.
    Reseller(String),
    Operator,
}

/// An action on the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RateInterim,
    RateFinal,
    ReadInvoice,
    ReadHistory,
    ReadMargin,
    /// Reading a usage and cost report (of the accounts the caller may read).
    ReadReport,
    /// Reading whether an export object was rated, refused or is pending.
    ReadExportStatus,
    RecordPayment,
    Finalize,
    Close,
    /// Re-rating a closed period (issuing a note).
    Rerate,
    /// Finalizing or closing a period before it ends.
    OverridePeriodEnd,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::RateInterim => "rate an interim batch",
            Action::RateFinal => "rate a final batch",
            Action::ReadInvoice => "read an invoice",
            Action::ReadHistory => "read an account's history",
            Action::ReadMargin => "read a reseller's margin report",
            Action::ReadReport => "read a usage and cost report",
            Action::ReadExportStatus => "read an export's status",
            Action::RecordPayment => "record a payment",
            Action::Finalize => "finalize a period",
            Action::Close => "close a period",
            Action::Rerate => "re-rate a closed period",
            Action::OverridePeriodEnd => "finalize before the period ends",
        }
    }

    /// Whether `role` may take this action on every tenant's data (a reseller's reads are
    /// checked against the tenant in [`Caller::may_read_account`] and
    /// [`Caller::may_read_reseller`]).
    fn allowed(self, role: &Role) -> bool {
        matches!(
            (self, role),
            (_, Role::Operator)
                | (
                    Action::RateInterim | Action::ReadExportStatus,
                    Role::Uploader
                )
        )
    }

    fn needs(self) -> &'static str {
        match self {
            Action::RateInterim | Action::ReadExportStatus => "the uploader or operator role",
            Action::ReadInvoice | Action::ReadHistory | Action::ReadMargin | Action::ReadReport => {
                "the operator role, or the reseller role of the account's reseller"
            }
            _ => "the operator role",
        }
    }
}

/// The deployment's principals: ARNs, or patterns ending in `*` (an assumed role's sessions,
/// `arn:aws:sts::123456789012:assumed-role/billing-ops/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    /// `RATECARD_OPERATORS`.
    pub operators: Vec<String>,
    /// `RATECARD_UPLOADERS`; `None` (unset) lets every authenticated caller upload.
    pub uploaders: Option<Vec<String>>,
    /// `RATECARD_RESELLERS`: (reseller id, principal pattern).
    pub resellers: Vec<(String, String)>,
}

impl Principals {
    /// Reads the three lists from the values of the environment variables (comma-separated;
    /// resellers as `id=pattern`). Refused naming the variable and entry for a reseller entry
    /// without `=`, or naming a reseller the catalog does not have.
    pub fn parse(
        operators: Option<&str>,
        uploaders: Option<&str>,
        resellers: Option<&str>,
        catalog: &pricing::Catalog,
    ) -> Result<Principals, RaterError> {
        let list = |v: Option<&str>| -> Vec<String> {
            v.unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect()
        };
        let mut pairs = Vec::new();
        for entry in list(resellers) {
            let Some((id, pattern)) = entry.split_once('=') else {
                return Err(RaterError::Config(format!(
                    "RATECARD_RESELLERS entry `{entry}` is not `reseller-id=principal`"
                )));
            };
            let (id, pattern) = (id.trim(), pattern.trim());
            if catalog.reseller(id).is_none() || pattern.is_empty() {
                return Err(RaterError::Config(format!(
                    "RATECARD_RESELLERS entry `{entry}`: the catalog has no reseller `{id}`, or the principal is empty"
                )));
            }
            pairs.push((id.to_string(), pattern.to_string()));
        }
        Ok(Principals {
            operators: list(operators),
            uploaders: uploaders.map(|u| list(Some(u))),
            resellers: pairs,
        })
    }

    /// The role of `principal`: operator first, then reseller, then uploader.
    fn role_of(&self, principal: &str) -> Option<Role> {
        if self.operators.iter().any(|o| matches(o, principal)) {
            return Some(Role::Operator);
        }
        if let Some((id, _)) = self.resellers.iter().find(|(_, p)| matches(p, principal)) {
            return Some(Role::Reseller(id.clone()));
        }
        match &self.uploaders {
            Some(list) if !list.iter().any(|u| matches(u, principal)) => None,
            _ => Some(Role::Uploader),
        }
    }
}

/// The caller of a request: its IAM principal (when the Function URL authenticated one) and
/// its role (none: refused everything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Option<String>,
    pub role: Option<Role>,
}

impl Caller {
    /// A direct invocation (schedule, fan-out) or the CLI: the operator.
    pub fn operator() -> Caller {
        Caller {
            principal: None,
            role: Some(Role::Operator),
        }
    }

    /// The caller of a Function URL request: `requestContext.authorizer.iam.userArn`, with the
    /// role `principals` give it. Without a principal (a URL without IAM auth, never deployed):
    /// an uploader when the deployment lists no uploaders, else nothing.
    pub fn of_url_request(request_context: &Value, principals: &Principals) -> Caller {
        let principal = request_context
            .pointer("/authorizer/iam/userArn")
            .and_then(Value::as_str)
            .map(str::to_string);
        let role = match &principal {
            Some(p) => principals.role_of(p),
            None if principals.uploaders.is_none() => Some(Role::Uploader),
            None => None,
        };
        Caller { principal, role }
    }

    fn forbidden(&self, action: Action) -> RaterError {
        RaterError::Forbidden {
            action: action.name(),
            needs: action.needs(),
            principal: self
                .principal
                .clone()
                .unwrap_or_else(|| "an unauthenticated caller".to_string()),
        }
    }

    /// Refuses `action` (403, nothing done) unless the caller's role allows it on every tenant.
    pub fn may(&self, action: Action) -> Result<(), RaterError> {
        match &self.role {
            Some(r) if action.allowed(r) => Ok(()),
            _ => Err(self.forbidden(action)),
        }
    }

    /// Refuses reading an account's documents (403, nothing read) unless the caller is an
    /// operator, or the reseller whose tenant the account is in (`tenant`: its customer, or its
    /// own account with the provider; `RaterConfig::tenant_of`). An account the book does not
    /// hold has no tenant and is refused alike to a reseller, so that a reseller cannot learn
    /// which accounts exist.
    pub fn may_read_account(&self, action: Action, tenant: Option<&str>) -> Result<(), RaterError> {
        match &self.role {
            Some(Role::Operator) => Ok(()),
            Some(Role::Reseller(r)) if tenant == Some(r.as_str()) => Ok(()),
            _ => Err(self.forbidden(action)),
        }
    }

    /// The reseller the caller acts for, when its role is a reseller's.
    pub fn reseller(&self) -> Option<&str> {
        match &self.role {
            Some(Role::Reseller(r)) => Some(r),
            _ => None,
        }
    }

    /// The refusal of `action` to this caller (403), for a refusal decided after a read.
    pub fn refusal(&self, action: Action) -> RaterError {
        self.forbidden(action)
    }

    /// Refuses `action` (403) unless the caller is an operator or a reseller: the roles that
    /// read some tenant's documents (which ones is [`Caller::may_read_account`]'s to say).
    pub fn may_read_a_tenant(&self, action: Action) -> Result<(), RaterError> {
        match &self.role {
            Some(Role::Operator | Role::Reseller(_)) => Ok(()),
            _ => Err(self.forbidden(action)),
        }
    }

    /// Refuses reading `reseller`'s reports unless the caller is an operator or that reseller.
    pub fn may_read_reseller(&self, action: Action, reseller: &str) -> Result<(), RaterError> {
        match &self.role {
            Some(Role::Operator) => Ok(()),
            Some(Role::Reseller(r)) if r == reseller => Ok(()),
            _ => Err(self.forbidden(action)),
        }
    }
}

fn matches(pattern: &str, principal: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => principal.starts_with(prefix),
        None => pattern == principal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principals(uploaders: Option<&str>) -> Principals {
        Principals {
            operators: vec![
                "arn:aws:iam::123456789012:user/alice".to_string(),
                "arn:aws:sts::123456789012:assumed-role/billing-ops/*".to_string(),
            ],
            uploaders: uploaders.map(|u| vec![u.to_string()]),
            resellers: vec![(
                "acme".to_string(),
                "arn:aws:sts::123456789012:assumed-role/acme-billing/*".to_string(),
            )],
        }
    }

    fn ctx(arn: &str) -> Value {
        json!({"authorizer": {"iam": {"userArn": arn}}})
    }

    #[test]
    fn roles_come_from_the_listed_principals() {
        let ops = principals(None);
        let cases = [
            ("arn:aws:iam::123456789012:user/alice", Some(Role::Operator)),
            (
                "arn:aws:iam::123456789012:user/alicia",
                Some(Role::Uploader),
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/billing-ops/s1",
                Some(Role::Operator),
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/acme-billing/s1",
                Some(Role::Reseller("acme".into())),
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/exporter/s1",
                Some(Role::Uploader),
            ),
        ];
        for (arn, role) in cases {
            assert_eq!(Caller::of_url_request(&ctx(arn), &ops).role, role, "{arn}");
        }
        let anonymous = Caller::of_url_request(&json!({}), &ops);
        assert_eq!(anonymous.role, Some(Role::Uploader));
        assert!(anonymous.may(Action::RateInterim).is_ok());
        for a in [Action::Close, Action::ReadInvoice, Action::RateFinal] {
            let err = anonymous.may(a).unwrap_err();
            assert_eq!((err.http_status(), err.code()), (403, "forbidden"));
        }
        assert!(Caller::operator().may(Action::OverridePeriodEnd).is_ok());
    }

    #[test]
    fn listing_uploaders_refuses_everyone_else() {
        let ops = principals(Some("arn:aws:sts::123456789012:assumed-role/exporter/*"));
        let exporter = ctx("arn:aws:sts::123456789012:assumed-role/exporter/s1");
        assert_eq!(
            Caller::of_url_request(&exporter, &ops).role,
            Some(Role::Uploader)
        );
        let stranger = Caller::of_url_request(&ctx("arn:aws:iam::1:user/eve"), &ops);
        assert_eq!(stranger.role, None);
        assert!(stranger.may(Action::RateInterim).is_err());
        assert_eq!(Caller::of_url_request(&json!({}), &ops).role, None);
    }

    #[test]
    fn a_reseller_reads_its_own_reports_only() {
        let ops = principals(None);
        let acme = Caller::of_url_request(
            &ctx("arn:aws:sts::123456789012:assumed-role/acme-billing/s1"),
            &ops,
        );
        assert!(acme.may_read_reseller(Action::ReadMargin, "acme").is_ok());
        assert!(acme
            .may_read_reseller(Action::ReadMargin, "nimbus")
            .is_err());
        assert!(acme.may(Action::RateInterim).is_err());
        assert!(acme.may(Action::Finalize).is_err());
    }

    #[test]
    fn reseller_entries_are_checked() {
        let catalog =
            pricing::Catalog::from_json(include_str!("../../examples/catalogs/cloudstack.json"))
                .unwrap();
        let p = Principals::parse(
            Some("arn:a"),
            None,
            Some("acme=arn:b/*, nimbus=arn:c"),
            &catalog,
        )
        .unwrap();
        assert_eq!(p.resellers.len(), 2);
        for bad in ["acme", "nobody=arn:x", "acme="] {
            let e = Principals::parse(None, None, Some(bad), &catalog).unwrap_err();
            assert!(e.to_string().contains("RATECARD_RESELLERS"), "{e}");
        }
    }
}
