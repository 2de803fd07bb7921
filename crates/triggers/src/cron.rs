//! Cron triggers: a tick is an event whose id is the tick time, so a tick fired twice (a crash between the
//! enqueue and the saved position) is one invocation. After downtime, `missed = "latest"` fires once for the
//! latest missed tick (with how many were missed in its data); `skip` goes on with the next tick.

use crate::{Ctx, STATE_BUCKET};
use chrono::TimeZone;
use chrono_tz::Tz;
use std::time::Duration;
use wisp_core::invocation::Event;
use wisp_core::trigger::{CronTrigger, MissedTicks};
use wisp_store::Expect;

/// Most missed ticks counted after downtime (a per-second schedule down for a day is 86,400).
const MAX_COUNTED: usize = 1_000_000;

/// A parsed schedule in its zone.
#[derive(Debug)]
pub(crate) struct Schedule {
    cron: croner::Cron,
    tz: Tz,
}

impl Schedule {
    pub fn parse(c: &CronTrigger) -> Result<Schedule, String> {
        let cron: croner::Cron =
            c.schedule.parse().map_err(|e| format!("schedule {:?} does not parse: {e}", c.schedule))?;
        let zone = c.timezone.as_deref().unwrap_or("UTC");
        let tz: Tz = zone.parse().map_err(|_| {
            format!("timezone {zone:?} is not an IANA time zone name (e.g. \"UTC\", \"Europe/Berlin\")")
        })?;
        Ok(Schedule { cron, tz })
    }

    /// The first tick strictly after `after_ms`.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        let t = self.tz.timestamp_millis_opt(after_ms as i64).single()?;
        self.cron.find_next_occurrence(&t, false).ok().map(|d| d.timestamp_millis() as u64)
    }

    /// The last tick at or before `at_ms`.
    pub fn latest_at(&self, at_ms: u64) -> Option<u64> {
        let t = self.tz.timestamp_millis_opt(at_ms as i64).single()?;
        self.cron.find_previous_occurrence(&t, true).ok().map(|d| d.timestamp_millis() as u64)
    }

    /// Ticks in (`after_ms`, `upto_ms`], counted up to [`MAX_COUNTED`].
    pub fn count_between(&self, after_ms: u64, upto_ms: u64) -> usize {
        let Some(t) = self.tz.timestamp_millis_opt(after_ms as i64).single() else { return 0 };
        self.cron.iter_after(t).take_while(|d| d.timestamp_millis() as u64 <= upto_ms).take(MAX_COUNTED).count()
    }
}

/// Where a cron trigger's last tick is kept (bucket [`STATE_BUCKET`]).
pub(crate) fn state_key(key: &wisp_core::FunctionKey, id: &str) -> String {
    format!("cron/{}/{}/{id}", key.namespace, key.name)
}

/// Runs one cron trigger until its task is aborted.
pub(crate) async fn run(ctx: Ctx, spec: CronTrigger) {
    let schedule = match Schedule::parse(&spec) {
        Ok(s) => s,
        Err(e) => {
            // Checked at deploy; a record from an older wisp could still hold one.
            ctx.live.failed(&e);
            return;
        }
    };
    let state_key = state_key(&ctx.key, &ctx.id);
    let mut last = match ctx.kv.get(STATE_BUCKET, &state_key).await {
        Ok(e) => e.and_then(|e| std::str::from_utf8(&e.value).ok()?.parse::<u64>().ok()),
        Err(e) => {
            tracing::warn!(function = %ctx.key, error = %e, "cannot read a cron trigger's last tick; missed ticks are not caught up");
            None
        }
    };
    ctx.live.set_state("scheduled");
    if let (Some(prev), MissedTicks::Latest) = (last, spec.missed)
        && let Some(latest) = schedule.latest_at(crate::now_ms())
        && latest > prev
    {
        let missed = schedule.count_between(prev, latest);
        fire(&ctx, &spec, &state_key, latest, missed).await;
        last = Some(latest);
    }
    let mut from = crate::now_ms().max(last.unwrap_or(0));
    loop {
        let Some(next) = schedule.next_after(from) else {
            ctx.live.next_tick(None);
            ctx.live.failed("the schedule has no further ticks");
            return;
        };
        ctx.live.next_tick(Some(next));
        let wait = next.saturating_sub(crate::now_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        // The monotonic timer may wake a hair before the wall clock reaches the tick.
        while crate::now_ms() < next {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        fire(&ctx, &spec, &state_key, next, 0).await;
        from = next;
    }
}

async fn fire(ctx: &Ctx, spec: &CronTrigger, state_key: &str, tick_ms: u64, missed: usize) {
    let tick = wisp_core::events::rfc3339_ms(tick_ms);
    let data = serde_json::json!({
        "schedule": spec.schedule,
        "timezone": spec.timezone.as_deref().unwrap_or("UTC"),
        "tick": tick,
        "missed_ticks": missed,
    });
    let event = Event {
        id: tick.clone(),
        source: format!("/_wisp/cron/{}/{}/{}", ctx.key.namespace, ctx.key.name, ctx.id),
        ty: "dev.wisp.cron.tick".into(),
        subject: Some(spec.schedule.clone()),
        time_ms: Some(tick_ms),
        data_content_type: Some("application/json".into()),
        data: serde_json::to_vec(&data).expect("json"),
        extensions: Default::default(),
    };
    ctx.deliver(event).await;
    if let Err(e) = ctx.kv.put(STATE_BUCKET, state_key, tick_ms.to_string().into_bytes(), Expect::Any).await {
        tracing::warn!(function = %ctx.key, error = %e, "cannot save a cron trigger's last tick");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(s: &str, tz: Option<&str>) -> Result<Schedule, String> {
        Schedule::parse(&CronTrigger { schedule: s.into(), timezone: tz.map(Into::into), missed: MissedTicks::Latest })
    }

    #[test]
    fn six_fields_have_seconds_first_and_five_fields_minutes() {
        let every2 = sched("*/2 * * * * *", None).unwrap();
        let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(every2.next_after(t0), Some(t0 + 2000));
        let minutely = sched("* * * * *", None).unwrap();
        assert_eq!(minutely.next_after(t0), Some(t0 + 60_000));
        assert_eq!(minutely.count_between(t0, t0 + 10 * 60_000), 10);
        assert_eq!(minutely.latest_at(t0 + 90_000), Some(t0 + 60_000));
    }

    #[test]
    fn zones_move_the_ticks() {
        let t0 = 1_767_225_600_000; // midnight UTC
        let nine_berlin = sched("0 0 9 * * *", Some("Europe/Berlin")).unwrap();
        // 09:00 in Berlin in January is 08:00 UTC.
        assert_eq!(nine_berlin.next_after(t0), Some(t0 + 8 * 3_600_000));
    }

    #[test]
    fn bad_schedules_and_zones_say_what_is_wrong() {
        assert!(sched("61 * * * *", None).unwrap_err().contains("does not parse"));
        assert!(sched("* * * * *", Some("Mars/Olympus")).unwrap_err().contains("not an IANA time zone"));
    }
}
