//! `time`: the system clock (`node_time_seconds`), the local time zone offset, and the
//! clocksources from `/sys/devices/system/clocksource`.

use eos_exposition::{Encoder, Kind};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::collector::{list_dir, read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "time",
    default_enabled: true,
    build: |_, _| Ok(Box::new(TimeCollector)),
};

struct TimeCollector;

impl Collector for TimeCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| format!("system clock before 1970: {e}"))?;
        enc.single(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            Kind::Gauge,
            &[],
            now.as_secs_f64(),
        );
        let (zone, offset) = local_zone(now.as_secs())?;
        enc.single(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            Kind::Gauge,
            &[("time_zone", &zone)],
            offset as f64,
        );

        let base = ctx.sys_path("devices/system/clocksource");
        let mut sources = Vec::new();
        for dev in list_dir(&base)? {
            let Some(id) = dev.strip_prefix("clocksource") else {
                continue;
            };
            let dir = base.join(&dev);
            let available = read_trimmed(&dir.join("available_clocksource"))?.unwrap_or_default();
            let current = read_trimmed(&dir.join("current_clocksource"))?.unwrap_or_default();
            sources.push((id.to_string(), available, current));
        }
        let mut f = enc.family(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
        );
        for (id, available, _) in &sources {
            for cs in available.split_ascii_whitespace() {
                f.sample(&[("clocksource", cs), ("device", id)], 1.0);
            }
        }
        let mut f = enc.family(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
        );
        for (id, _, current) in &sources {
            if !current.is_empty() {
                f.sample(&[("clocksource", current), ("device", id)], 1.0);
            }
        }
        Ok(())
    }
}

/// The local time zone's abbreviation and UTC offset in seconds at `unix_secs`.
fn local_zone(unix_secs: u64) -> Result<(String, i64), String> {
    let t = libc::time_t::try_from(unix_secs).map_err(|_| "time out of range".to_string())?;
    // SAFETY: tm is plain old data, filled by localtime_r.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return Err("localtime_r failed".to_string());
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null tm_zone points to a NUL-terminated string owned by libc.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    Ok((zone, tm.tm_gmtoff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_is_readable() {
        let (zone, offset) = local_zone(1_700_000_000).unwrap();
        assert!(!zone.is_empty());
        assert!(offset.abs() <= 14 * 3600);
    }
}
