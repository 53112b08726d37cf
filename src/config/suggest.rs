//! "Did you mean ...?": the one known name closest to a misspelt one.

/// Edit distance with adjacent transpositions counted as one edit (`precentage` is one edit
/// from `percentage`), letter case ignored.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Three rows of the dynamic-programming table: two back, one back, current.
    let mut two_back = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(two_back[j - 2] + 1);
            }
        }
        std::mem::swap(&mut two_back, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `name`, when exactly one is close: within one edit for names of up
/// to four characters, two for longer ones, or equal but for letter case, `-` and `_`.
pub(crate) fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if name.len() > 64 {
        return None;
    }
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let within = if name.chars().count() <= 4 { 1 } else { 2 };
    let mut best: Option<(usize, &str)> = None;
    let mut tied = false;
    for &c in candidates {
        let d = if squash(c) == squash(name) {
            0
        } else {
            distance(name, c)
        };
        if d > within {
            continue;
        }
        match best {
            Some((b, _)) if d > b => {}
            Some((b, _)) if d == b => tied = true,
            _ => {
                best = Some((d, c));
                tied = false;
            }
        }
    }
    best.filter(|_| !tied).map(|(_, c)| c)
}

/// `" (did you mean `x`?)"` when one candidate is close, else nothing.
pub(crate) fn did_you_mean(name: &str, candidates: &[&str]) -> String {
    match closest(name, candidates) {
        Some(c) if c != name => format!(" (did you mean `{c}`?)"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested() {
        let fields = [
            "percentage",
            "httpStatus",
            "grpcStatus",
            "http2Error",
            "percent",
        ];
        assert_eq!(closest("precentage", &fields), Some("percentage"));
        assert_eq!(closest("http_status", &fields), Some("httpStatus"));
        assert_eq!(closest("HttpStatus", &fields), Some("httpStatus"));
        assert_eq!(closest("percnt", &fields), Some("percent"));
        assert_eq!(closest("delay", &fields), None);
        // Two candidates equally close: no guess.
        assert_eq!(closest("ab", &["ac", "ad"]), None);
        assert_eq!(
            did_you_mean("hots", &["hosts", "gateways"]),
            " (did you mean `hosts`?)"
        );
        assert_eq!(did_you_mean("zzz", &["hosts"]), "");
    }

    #[test]
    fn distances() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("abc", "acb"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
