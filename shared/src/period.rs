//! Billing periods (hour, day, ISO week, calendar month; UTC) and their ids.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PeriodError;

/// The length of an account's billing period (Abiquo's HOUR/DAY/WEEK/MONTH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Hour,
    Day,
    /// ISO week: Monday 00:00 UTC to the next Monday.
    Week,
    Month,
}

/// The years an instant from outside (an export's times, a payment's date, a period's id) may
/// lie in: four-digit years, as RFC 3339 writes them and as period ids sort (`10000-01` would
/// sort before `9999-12`). Outside them a period's end may not exist: chrono's dates stop in
/// year 262143, which parsers of `%Y` accept, and building the period around such an instant
/// would panic instead of refusing the record.
pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// Whether `at` lies in [`YEARS`]: checked on every instant from outside before a period is
/// built around it.
pub fn supported(at: DateTime<Utc>) -> bool {
    YEARS.contains(&at.year())
}

/// A half-open UTC interval `[start, end)` aligned to its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BillingPeriod {
    pub kind: PeriodKind,
    pub start: DateTime<Utc>,
}

impl BillingPeriod {
    /// The period of `kind` that contains instant `at`, which lies in [`YEARS`] (the
    /// importers and the rater's requests refuse other instants first).
    pub fn containing(kind: PeriodKind, at: DateTime<Utc>) -> BillingPeriod {
        let date = at.date_naive();
        let start = match kind {
            PeriodKind::Hour => Utc
                .with_ymd_and_hms(date.year(), date.month(), date.day(), at.hour(), 0, 0)
                .unwrap(),
            PeriodKind::Day => midnight(date),
            PeriodKind::Week => {
                midnight(date - Duration::days(i64::from(date.weekday().num_days_from_monday())))
            }
            PeriodKind::Month => {
                midnight(NaiveDate::from_ymd_opt(date.year(), date.month(), 1).unwrap())
            }
        };
        BillingPeriod { kind, start }
    }

    /// A calendar month, e.g. `month(2017, 2)` for February 2017 (a year in [`YEARS`]).
    pub fn month(year: i32, month: u32) -> Result<BillingPeriod, PeriodError> {
        let d = NaiveDate::from_ymd_opt(year, month, 1)
            .filter(|_| YEARS.contains(&year))
            .ok_or_else(|| PeriodError::Invalid {
                text: format!("{year}-{month:02}"),
            })?;
        Ok(BillingPeriod {
            kind: PeriodKind::Month,
            start: midnight(d),
        })
    }

    /// The exclusive end of the period.
    pub fn end(&self) -> DateTime<Utc> {
        match self.kind {
            PeriodKind::Hour => self.start + Duration::hours(1),
            PeriodKind::Day => self.start + Duration::days(1),
            PeriodKind::Week => self.start + Duration::days(7),
            PeriodKind::Month => {
                let d = self.start.date_naive();
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                midnight(NaiveDate::from_ymd_opt(y, m, 1).unwrap())
            }
        }
    }

    /// The period right after this one.
    pub fn next(&self) -> BillingPeriod {
        BillingPeriod {
            kind: self.kind,
            start: self.end(),
        }
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end()
    }

    /// Days in the calendar month that holds the period's start: the denominator of monthly-fee
    /// proration whatever the period length.
    pub fn days_in_month(&self) -> u32 {
        let m = BillingPeriod::containing(PeriodKind::Month, self.start);
        (m.end() - m.start).num_days() as u32
    }

    /// A stable, sortable id: `2017-02`, `2017-W05`, `2017-02-14`, `2017-02-14T09`.
    pub fn id(&self) -> String {
        let d = self.start.date_naive();
        match self.kind {
            PeriodKind::Month => format!("{:04}-{:02}", d.year(), d.month()),
            PeriodKind::Week => {
                let w = d.iso_week();
                format!("{:04}-W{:02}", w.year(), w.week())
            }
            PeriodKind::Day => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
            PeriodKind::Hour => format!(
                "{:04}-{:02}-{:02}T{:02}",
                d.year(),
                d.month(),
                d.day(),
                self.start.hour()
            ),
        }
    }

    /// Parses an id written by [`BillingPeriod::id`], of a period starting in [`YEARS`].
    pub fn parse(text: &str) -> Result<BillingPeriod, PeriodError> {
        let p = BillingPeriod::parse_any_year(text)?;
        if !supported(p.start) {
            return Err(PeriodError::Invalid {
                text: text.to_string(),
            });
        }
        Ok(p)
    }

    fn parse_any_year(text: &str) -> Result<BillingPeriod, PeriodError> {
        let invalid = || PeriodError::Invalid {
            text: text.to_string(),
        };
        let t = text.trim();
        if let Some((y, w)) = t.split_once("-W") {
            let y: i32 = y.parse().map_err(|_| invalid())?;
            let w: u32 = w.parse().map_err(|_| invalid())?;
            let d = NaiveDate::from_isoywd_opt(y, w, chrono::Weekday::Mon).ok_or_else(invalid)?;
            return Ok(BillingPeriod {
                kind: PeriodKind::Week,
                start: midnight(d),
            });
        }
        if let Some((date, hour)) = t.split_once('T') {
            let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| invalid())?;
            let h: u32 = hour.parse().map_err(|_| invalid())?;
            if h > 23 {
                return Err(invalid());
            }
            return Ok(BillingPeriod {
                kind: PeriodKind::Hour,
                start: midnight(d) + Duration::hours(i64::from(h)),
            });
        }
        match t.len() {
            7 => {
                let d = NaiveDate::parse_from_str(&format!("{t}-01"), "%Y-%m-%d")
                    .map_err(|_| invalid())?;
                Ok(BillingPeriod {
                    kind: PeriodKind::Month,
                    start: midnight(d),
                })
            }
            10 => {
                let d = NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| invalid())?;
                Ok(BillingPeriod {
                    kind: PeriodKind::Day,
                    start: midnight(d),
                })
            }
            _ => Err(invalid()),
        }
    }
}

/// 00:00 UTC of a date.
pub fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Periods exist for years 0001-9999 only: past them, a period's end may not exist
    /// (chrono stops in year 262143) and ids stop sorting (`10000-01` before `9999-12`).
    #[test]
    fn periods_outside_four_digit_years_are_refused() {
        for id in [
            "262143-W52",
            "262143-12-31T23",
            "262143-12-31",
            "10000-01",
            "0000-12",
            "-0001-W01",
        ] {
            assert!(BillingPeriod::parse(id).is_err(), "{id}");
        }
        assert!(BillingPeriod::month(262_143, 12).is_err());
        assert!(BillingPeriod::month(0, 12).is_err());
        // The last periods have ends, and round-trip (ends checked by hand).
        let last = BillingPeriod::parse("9999-12").unwrap();
        assert_eq!(
            last.end().date_naive(),
            NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap()
        );
        assert_eq!(BillingPeriod::parse("9999-W52").unwrap().id(), "9999-W52");
        assert_eq!(
            BillingPeriod::parse("0001-W01").unwrap().start,
            t("0001-01-01T00:00:00Z")
        );
        assert!(supported(t("9999-12-31T23:59:59Z")));
        assert!(!supported(t("9999-12-31T23:00:00-01:00")));
    }

    #[test]
    fn periods_contain_and_round_trip() {
        let at = t("2017-02-14T09:30:00Z");
        let cases = [
            (PeriodKind::Hour, "2017-02-14T09", "2017-02-14T10:00:00Z"),
            (PeriodKind::Day, "2017-02-14", "2017-02-15T00:00:00Z"),
            (PeriodKind::Week, "2017-W07", "2017-02-20T00:00:00Z"),
            (PeriodKind::Month, "2017-02", "2017-03-01T00:00:00Z"),
        ];
        for (kind, id, end) in cases {
            let p = BillingPeriod::containing(kind, at);
            assert!(p.contains(at));
            assert_eq!(p.id(), id);
            assert_eq!(p.end(), t(end), "{id}");
            assert_eq!(BillingPeriod::parse(id).unwrap(), p);
        }
        assert_eq!(BillingPeriod::month(2016, 2).unwrap().days_in_month(), 29);
        assert_eq!(
            BillingPeriod::month(2017, 12).unwrap().next().id(),
            "2018-01"
        );
        assert!(BillingPeriod::parse("2017-13").is_err());
        assert!(BillingPeriod::parse("nonsense").is_err());
    }
}
