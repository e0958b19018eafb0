//! Who may do what: the caller's role, read from the Function URL's IAM request context and the deployment's list of operators, and the actions each role may take.
//!
//! Enforced where requests are served (`event`), never in a client. Two roles today:
//! - an **uploader** (the exporters' IAM principals) rates interim batches and reads invoices
//!   and histories;
//! - an **operator** (the principals the deployment lists in `RATECARD_OPERATORS`) also
//!   finalizes, closes periods, records payments, and may override the rule that a period is
//!   finalized only after it ends, and re-rate closed periods (issuing notes). Direct invocations (the schedule, the fan-out) act as the
//!   operator: only they can invoke the function directly (its resource policy).

use serde_json::Value;

use crate::error::RaterError;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Uploader,
    Operator,
}

/// An action on the function, with the role it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RateInterim,
    RateFinal,
    ReadInvoice,
    ReadHistory,
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
            Action::RecordPayment => "record a payment",
            Action::Finalize => "finalize a period",
            Action::Close => "close a period",
            Action::Rerate => "re-rate a closed period",
            Action::OverridePeriodEnd => "finalize before the period ends",
        }
    }

    fn needs(self) -> Role {
        match self {
            Action::RateInterim | Action::ReadInvoice | Action::ReadHistory => Role::Uploader,
            _ => Role::Operator,
        }
    }
}

/// The caller of a request: its IAM principal (when the Function URL authenticated one) and
/// its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Option<String>,
    pub role: Role,
}

impl Caller {
    /// A direct invocation (schedule, fan-out) or the CLI: the operator.
    pub fn operator() -> Caller {
        Caller {
            principal: None,
            role: Role::Operator,
        }
    }

    /// The caller of a Function URL request: `requestContext.authorizer.iam.userArn`, an
    /// operator when `operators` lists it (exactly, or by a pattern ending in `*`, such as an
    /// assumed role's sessions `arn:aws:sts::123456789012:assumed-role/billing-ops/*`).
    pub fn of_url_request(request_context: &Value, operators: &[String]) -> Caller {
        let principal = request_context
            .pointer("/authorizer/iam/userArn")
            .and_then(Value::as_str)
            .map(str::to_string);
        let is_operator = principal
            .as_deref()
            .is_some_and(|p| operators.iter().any(|o| matches(o, p)));
        Caller {
            principal,
            role: if is_operator {
                Role::Operator
            } else {
                Role::Uploader
            },
        }
    }

    /// Refuses `action` (403, nothing done) unless the caller's role allows it.
    pub fn may(&self, action: Action) -> Result<(), RaterError> {
        if self.role >= action.needs() {
            return Ok(());
        }
        Err(RaterError::Forbidden {
            action: action.name(),
            principal: self
                .principal
                .clone()
                .unwrap_or_else(|| "an unauthenticated caller".to_string()),
        })
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

    #[test]
    fn roles_come_from_the_listed_principals() {
        let ops = vec![
            "arn:aws:iam::123456789012:user/alice".to_string(),
            "arn:aws:sts::123456789012:assumed-role/billing-ops/*".to_string(),
        ];
        let ctx = |arn: &str| json!({"authorizer": {"iam": {"userArn": arn}}});
        let cases = [
            ("arn:aws:iam::123456789012:user/alice", Role::Operator),
            ("arn:aws:iam::123456789012:user/alicia", Role::Uploader),
            (
                "arn:aws:sts::123456789012:assumed-role/billing-ops/s1",
                Role::Operator,
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/exporter/s1",
                Role::Uploader,
            ),
        ];
        for (arn, role) in cases {
            assert_eq!(Caller::of_url_request(&ctx(arn), &ops).role, role, "{arn}");
        }
        let anonymous = Caller::of_url_request(&json!({}), &ops);
        assert_eq!(anonymous.role, Role::Uploader);
        assert!(anonymous.may(Action::RateInterim).is_ok());
        let err = anonymous.may(Action::Close).unwrap_err();
        assert_eq!((err.http_status(), err.code()), (403, "forbidden"));
        assert!(Caller::operator().may(Action::OverridePeriodEnd).is_ok());
    }
}
