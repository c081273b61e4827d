//! Schedules as Harbor writes them: cron expressions of six fields, seconds first
//! (`0 0 0 * * *` is every day at midnight), in UTC; Harbor requires the seconds field to be `0`.
//! Pure: the caller says what "now" is and since when a schedule counts.

use std::str::FromStr;

use chrono::{DateTime, Utc};

/// Why a cron expression is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron string {cron:?}: {reason}")]
    Invalid { cron: String, reason: String },
}

/// A checked cron schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    text: String,
    schedule: cron::Schedule,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &CronSchedule) -> bool {
        self.text == other.text
    }
}

impl Eq for CronSchedule {}

impl CronSchedule {
    /// A Harbor cron expression: six whitespace-separated fields (seconds, minutes, hours, day of
    /// month, month, day of week), the seconds `0`.
    pub fn parse(text: &str) -> Result<CronSchedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Invalid {
            cron: text.to_string(),
            reason,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(invalid(format!(
                "expected 6 fields (seconds minutes hours day-of-month month day-of-week), found {}",
                fields.len()
            )));
        }
        if fields[0] != "0" {
            return Err(invalid("the seconds field must be 0".to_string()));
        }
        let mut translated: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        translated[5] = day_of_week(fields[5]).map_err(invalid)?;
        let schedule = cron::Schedule::from_str(&translated.join(" ")).map_err(|e| invalid(e.to_string()))?;
        if schedule.upcoming(Utc).next().is_none() {
            return Err(invalid("it never fires".to_string()));
        }
        Ok(CronSchedule {
            text: fields.join(" "),
            schedule,
        })
    }

    /// The expression, its fields separated by one space.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The latest time the schedule fired after `since` and at or before `now`, if it did.
    pub fn last_due(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&since).take_while(|t| *t <= now).last()
    }

    /// The first time the schedule fires after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&t).next()
    }
}

/// A day-of-week field in Harbor's numbering (robfig/cron: 0 or 7 is Sunday, 6 Saturday) in the
/// `cron` crate's (1 is Sunday, 7 Saturday); names (`SUN`, `MON-FRI`) and steps stay as they are.
fn day_of_week(field: &str) -> Result<String, String> {
    let shift = |n: &str| -> Result<String, String> {
        match n.parse::<u8>() {
            Ok(d @ 0..=6) => Ok((d + 1).to_string()),
            Ok(7) => Ok("1".to_string()),
            Ok(d) => Err(format!("day of week {d} is not 0-7")),
            Err(_) => Ok(n.to_string()),
        }
    };
    let parts: Result<Vec<String>, String> = (field.split(','))
        .map(|part| {
            let (base, step) = match part.split_once('/') {
                Some((base, step)) => (base, Some(step)),
                None => (part, None),
            };
            let base = match base.split_once('-') {
                Some((from, to)) => format!("{}-{}", shift(from)?, shift(to)?),
                None => shift(base)?,
            };
            Ok(match step {
                Some(step) => format!("{base}/{step}"),
                None => base,
            })
        })
        .collect();
    Ok(parts?.join(","))
}

/// Garbage collection's schedule as events record it: Harbor's schedule type (`Hourly`, `Daily`,
/// `Weekly`, `Custom`, `Schedule`), its cron, and the run's parameters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcScheduleSpec {
    pub kind: String,
    pub cron: String,
    #[serde(default)]
    pub delete_untagged: bool,
    #[serde(default)]
    pub dry_run: bool,
}

/// Harbor's recurring schedule types and the cron each stands for when none is given
/// (`Custom` and `Schedule` need one).
pub fn default_cron(kind: &str) -> Option<&'static str> {
    match kind {
        "Hourly" => Some("0 0 * * * *"),
        "Daily" => Some("0 0 0 * * *"),
        "Weekly" => Some("0 0 0 * * 0"),
        _ => None,
    }
}

/// The recurring types Harbor's GC schedule takes.
pub const RECURRING_KINDS: [&str; 5] = ["Hourly", "Daily", "Weekly", "Custom", "Schedule"];

impl GcScheduleSpec {
    /// The spec's cron, checked.
    pub fn compile(&self) -> Result<CronSchedule, ScheduleError> {
        if !RECURRING_KINDS.contains(&self.kind.as_str()) {
            return Err(ScheduleError::Invalid {
                cron: self.cron.clone(),
                reason: format!(
                    "schedule type {:?} is not one of {}",
                    self.kind,
                    RECURRING_KINDS.join(", ")
                ),
            });
        }
        CronSchedule::parse(&self.cron)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, h, m, 0).unwrap()
    }

    #[test]
    fn harbors_six_field_expressions_are_taken_and_others_refused() {
        let daily = CronSchedule::parse("0 0 0 * * *").unwrap();
        assert_eq!(daily.as_str(), "0 0 0 * * *");
        assert_eq!(
            CronSchedule::parse(" 0  30 2 * * 1 ").unwrap().as_str(),
            "0 30 2 * * 1"
        );
        for bad in [
            "",
            "0 0 * * *",
            "0 0 0 * * * 2030",
            "30 0 0 * * *",
            "0 61 * * * *",
            "0 0 0 31 2 *",
            "daily",
        ] {
            assert!(CronSchedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn days_of_the_week_count_from_sunday_as_zero_as_harbors_do() {
        use chrono::Datelike;
        // 7 December 2026 is a Monday.
        let next = |cron: &str| CronSchedule::parse(cron).unwrap().next_after(at(12, 0)).unwrap();
        assert_eq!(next("0 0 0 * * 0").weekday(), chrono::Weekday::Sun);
        assert_eq!(next("0 0 0 * * 7").weekday(), chrono::Weekday::Sun);
        assert_eq!(next("0 0 0 * * 6").weekday(), chrono::Weekday::Sat);
        assert_eq!(next("0 0 0 * * 2").weekday(), chrono::Weekday::Tue);
        assert_eq!(next("0 0 0 * * 1-5").weekday(), chrono::Weekday::Tue);
        assert_eq!(next("0 0 0 * * SUN").weekday(), chrono::Weekday::Sun);
        assert_eq!(next("0 0 0 * * 0,3").weekday(), chrono::Weekday::Wed);
        assert!(CronSchedule::parse("0 0 0 * * 8").is_err());
        for kind in RECURRING_KINDS {
            if let Some(cron) = default_cron(kind) {
                assert!(CronSchedule::parse(cron).is_ok(), "{kind}: {cron}");
            }
        }
    }

    #[test]
    fn the_last_due_time_is_the_latest_firing_since_then_and_none_before_the_first() {
        let hourly = CronSchedule::parse("0 0 * * * *").unwrap();
        assert_eq!(hourly.last_due(at(10, 5), at(10, 59)), None);
        assert_eq!(hourly.last_due(at(10, 5), at(11, 0)), Some(at(11, 0)));
        assert_eq!(hourly.last_due(at(10, 5), at(13, 30)), Some(at(13, 0)));
        // A run at the due time itself is "since" it: nothing is due again until the next hour.
        assert_eq!(hourly.last_due(at(13, 0), at(13, 30)), None);
        assert_eq!(hourly.next_after(at(13, 0)), Some(at(14, 0)));
    }
}
