//! Scraping a running node module once, as the agent does, for the module-level tests.

use eos_exposition::{Encoder, Format};
use eos_module::{Module, Scrape};
use std::time::{Duration, Instant};

/// One scrape with `budget`; it must answer before its deadline.
pub fn scrape(module: &dyn Module, budget: Duration) -> String {
    let deadline = Instant::now() + budget;
    let mut buf = Vec::new();
    let mut enc = Encoder::new(&mut buf, Format::Text);
    module.collect(
        &mut enc,
        &Scrape {
            params: &[],
            deadline,
        },
    );
    drop(enc);
    assert!(Instant::now() < deadline, "the scrape missed its deadline");
    String::from_utf8(buf).unwrap()
}
