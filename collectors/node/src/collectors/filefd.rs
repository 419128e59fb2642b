//! `filefd`: `node_filefd_allocated` and `node_filefd_maximum` from `/proc/sys/fs/file-nr`.

use eos_exposition::{Encoder, Kind};

use crate::collector::{parse_f64, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "filefd",
    default_enabled: true,
    build: |_, _| Ok(Box::new(FilefdCollector)),
};

struct FilefdCollector;

impl Collector for FilefdCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let (allocated, maximum) = parse_file_nr(ctx.read_proc("sys/fs/file-nr")?)?;
        let g = Kind::Gauge;
        enc.single(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            g,
            &[],
            allocated,
        );
        enc.single(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            g,
            &[],
            maximum,
        );
        Ok(())
    }
}

/// `allocated  unused  maximum` -> (allocated, maximum).
fn parse_file_nr(text: &str) -> Result<(f64, f64), String> {
    let what = "parsing /proc/sys/fs/file-nr";
    let mut parts = text.split_ascii_whitespace();
    let (Some(a), Some(_), Some(m)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{what}: expected 3 fields"));
    };
    Ok((parse_f64(a, &what)?, parse_f64(m, &what)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            parse_file_nr("504\t0\t2466183\n").unwrap(),
            (504.0, 2466183.0)
        );
        assert!(parse_file_nr("504\t0").is_err());
        assert!(parse_file_nr("a 0 1").is_err());
    }
}
