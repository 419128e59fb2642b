//! Walking a benchmark's `--flag value` / `--flag=value` arguments, shared by the shared
//! options and each benchmark's own.

/// One argument that may be a flag: the whole argument, the flag part and an inline value.
#[derive(Clone, Copy, Debug)]
pub(super) struct Arg<'a> {
    /// The argument as given, for "unknown option" messages.
    pub(super) whole: &'a str,
    /// Before `=`, or the whole argument.
    pub(super) flag: &'a str,
    /// After `=`, if any.
    pub(super) inline: Option<&'a str>,
}

/// The arguments, one flag at a time; [`Args::value`] takes a flag's value.
pub(super) struct Args<'a> {
    it: std::slice::Iter<'a, String>,
}

impl<'a> Args<'a> {
    /// Walks `args`.
    pub(super) fn new(args: &'a [String]) -> Self {
        Args { it: args.iter() }
    }

    /// The next argument, split at its first `=`.
    pub(super) fn next_arg(&mut self) -> Option<Arg<'a>> {
        let whole = self.it.next()?.as_str();
        let (flag, inline) = match whole.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (whole, None),
        };
        Some(Arg {
            whole,
            flag,
            inline,
        })
    }

    /// `arg`'s value: after its `=`, else the next argument.
    pub(super) fn value(&mut self, arg: &Arg<'a>) -> Result<&'a str, String> {
        arg.inline
            .or_else(|| self.it.next().map(String::as_str))
            .ok_or_else(|| format!("{} needs a value", arg.flag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_with_inline_and_separate_values() {
        let v: Vec<String> = ["--a=1", "--b", "2", "--c", "--d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut args = Args::new(&v);
        let a = args.next_arg().unwrap();
        assert_eq!((a.flag, args.value(&a).unwrap()), ("--a", "1"));
        let b = args.next_arg().unwrap();
        assert_eq!((b.flag, args.value(&b).unwrap()), ("--b", "2"));
        let c = args.next_arg().unwrap();
        assert_eq!((c.whole, c.inline), ("--c", None));
        // `--c`'s value would be `--d`: a flag that takes one must be given it.
        let d = args.next_arg().unwrap();
        assert_eq!(args.value(&d).unwrap_err(), "--d needs a value");
        assert!(args.next_arg().is_none());
    }
}
