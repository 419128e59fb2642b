//! `timex`: the kernel clock discipline state from `adjtimex(2)` (NTP sync status, offsets,
//! PPS counters), as `node_timex_*`.

use eos_exposition::{Encoder, Kind};

use crate::collector::{Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "timex",
    default_enabled: true,
    build: |_, _| Ok(Box::new(TimexCollector)),
};

struct TimexCollector;

/// `STA_NANO`: offsets are in nanoseconds instead of microseconds.
const STA_NANO: i32 = 0x2000;
/// `TIME_ERROR`: the clock is not synchronised.
const TIME_ERROR: i32 = 5;
/// Frequencies are in ppm scaled by 2^16.
const PPM16: f64 = 65536.0 * 1e6;

/// What `adjtimex` reports, as node_exporter's samples.
struct Timex {
    state: i32,
    offset: i64,
    freq: i64,
    maxerror: i64,
    esterror: i64,
    status: i32,
    constant: i64,
    tick: i64,
    ppsfreq: i64,
    jitter: i64,
    shift: i32,
    stabil: i64,
    jitcnt: i64,
    calcnt: i64,
    errcnt: i64,
    stbcnt: i64,
    tai: i32,
}

impl Collector for TimexCollector {
    fn update(&self, enc: &mut Encoder<'_>, _ctx: &mut Ctx<'_>) -> Result<(), String> {
        write_timex(enc, &adjtimex()?);
        Ok(())
    }
}

fn adjtimex() -> Result<Timex, String> {
    // SAFETY: timex is plain old data; modes = 0 only reads.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable timex.
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return Err(format!("adjtimex: {}", std::io::Error::last_os_error()));
    }
    Ok(Timex {
        state,
        offset: t.offset as i64,
        freq: t.freq as i64,
        maxerror: t.maxerror as i64,
        esterror: t.esterror as i64,
        status: t.status,
        constant: t.constant as i64,
        tick: t.tick as i64,
        ppsfreq: t.ppsfreq as i64,
        jitter: t.jitter as i64,
        shift: t.shift,
        stabil: t.stabil as i64,
        jitcnt: t.jitcnt as i64,
        calcnt: t.calcnt as i64,
        errcnt: t.errcnt as i64,
        stbcnt: t.stbcnt as i64,
        tai: t.tai,
    })
}

fn write_timex(enc: &mut Encoder<'_>, t: &Timex) {
    let divisor = if t.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    let sync = if t.state == TIME_ERROR { 0.0 } else { 1.0 };
    let g = Kind::Gauge;
    let c = Kind::Counter;
    let samples: [(&str, &str, Kind, f64); 17] = [
        (
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            g,
            sync,
        ),
        (
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            g,
            t.offset as f64 / divisor,
        ),
        (
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            g,
            1.0 + t.freq as f64 / PPM16,
        ),
        (
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            g,
            t.maxerror as f64 / 1e6,
        ),
        (
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            g,
            t.esterror as f64 / 1e6,
        ),
        (
            "node_timex_status",
            "Value of the status array bits.",
            g,
            t.status as f64,
        ),
        (
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            g,
            t.constant as f64,
        ),
        (
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            g,
            t.tick as f64 / 1e6,
        ),
        (
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            g,
            t.ppsfreq as f64 / PPM16,
        ),
        (
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            g,
            t.jitter as f64 / divisor,
        ),
        (
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            g,
            t.shift as f64,
        ),
        (
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            g,
            t.stabil as f64 / PPM16,
        ),
        (
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            c,
            t.jitcnt as f64,
        ),
        (
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            c,
            t.calcnt as f64,
        ),
        (
            "node_timex_pps_error_total",
            "Pulse per second count of calibration errors.",
            c,
            t.errcnt as f64,
        ),
        (
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            c,
            t.stbcnt as f64,
        ),
        (
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            g,
            t.tai as f64,
        ),
    ];
    for (name, help, kind, v) in samples {
        enc.single(name, help, kind, &[], v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_exposition::{parse_text, Format};

    #[test]
    fn units() {
        let t = Timex {
            state: TIME_ERROR,
            offset: 1500,
            freq: 65536,
            maxerror: 16_000_000,
            esterror: 16_000_000,
            status: 64,
            constant: 2,
            tick: 10000,
            ppsfreq: 0,
            jitter: 0,
            shift: 0,
            stabil: 0,
            jitcnt: 0,
            calcnt: 0,
            errcnt: 0,
            stbcnt: 0,
            tai: 37,
        };
        let mut buf = Vec::new();
        write_timex(&mut Encoder::new(&mut buf, Format::Text), &t);
        let p = parse_text(std::str::from_utf8(&buf).unwrap()).unwrap();
        let v = |n: &str| p.samples.iter().find(|s| s.name == n).unwrap().value;
        assert_eq!(v("node_timex_sync_status"), 0.0);
        assert_eq!(v("node_timex_offset_seconds"), 0.0015);
        assert_eq!(v("node_timex_frequency_adjustment_ratio"), 1.000001);
        assert_eq!(v("node_timex_maxerror_seconds"), 16.0);
        assert_eq!(v("node_timex_tick_seconds"), 0.01);
        assert_eq!(v("node_timex_tai_offset_seconds"), 37.0);
    }

    #[test]
    fn this_machine() {
        assert!(adjtimex().is_ok());
    }
}
