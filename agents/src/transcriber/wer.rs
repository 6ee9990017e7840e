//! Word error rate: Levenshtein distance over normalised word sequences.

/// Normalise text to words: lowercase, apostrophes dropped (`don't` → `dont`), every other
/// non-alphanumeric character a word break.
pub fn normalize(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\'' || c == '\u{2019}' {
            continue;
        }
        if c.is_alphanumeric() {
            cleaned.extend(c.to_lowercase());
        } else {
            cleaned.push(' ');
        }
    }
    cleaned.split_whitespace().map(str::to_string).collect()
}

/// Edit counts of the best alignment of a hypothesis against a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WordErrors {
    /// Reference words replaced.
    pub substitutions: usize,
    /// Reference words missing.
    pub deletions: usize,
    /// Extra hypothesis words.
    pub insertions: usize,
    /// Number of reference words.
    pub reference_words: usize,
}

impl WordErrors {
    /// Total edits.
    pub fn edits(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// Edits divided by reference words (an empty reference gives 0 for an empty hypothesis,
    /// 1 otherwise).
    pub fn rate(&self) -> f64 {
        if self.reference_words == 0 {
            return if self.edits() == 0 { 0.0 } else { 1.0 };
        }
        self.edits() as f64 / self.reference_words as f64
    }
}

/// Align `hypothesis` to `reference` word by word (minimum edits; ties prefer substitutions).
pub fn word_errors<S: AsRef<str>>(reference: &[S], hypothesis: &[S]) -> WordErrors {
    let (n, m) = (reference.len(), hypothesis.len());
    // cost[i][j]: (edits, subs, dels, ins) aligning reference[..i] with hypothesis[..j].
    let mut prev: Vec<(usize, usize, usize, usize)> = (0..=m).map(|j| (j, 0, 0, j)).collect();
    for i in 1..=n {
        let mut cur = vec![(i, 0, i, 0); m + 1];
        for j in 1..=m {
            let same = reference[i - 1].as_ref() == hypothesis[j - 1].as_ref();
            let d = prev[j - 1];
            let diag = if same {
                d
            } else {
                (d.0 + 1, d.1 + 1, d.2, d.3)
            };
            let u = prev[j];
            let del = (u.0 + 1, u.1, u.2 + 1, u.3);
            let l = cur[j - 1];
            let ins = (l.0 + 1, l.1, l.2, l.3 + 1);
            cur[j] = [diag, del, ins]
                .into_iter()
                .min_by_key(|c| c.0)
                .unwrap_or(diag);
        }
        prev = cur;
    }
    let (_, substitutions, deletions, insertions) = prev[m];
    WordErrors {
        substitutions,
        deletions,
        insertions,
        reference_words: n,
    }
}

/// Word error rate of `hypothesis` against `reference`, after [`normalize`].
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    word_errors(&normalize(reference), &normalize(hypothesis)).rate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize("Hello, World! Don't  stop—now."),
            ["hello", "world", "dont", "stop", "now"]
        );
        assert!(normalize(" ... ").is_empty());
    }

    #[test]
    fn counts_each_kind_of_error() {
        let r = normalize("the cat sat on the mat");
        assert_eq!(word_errors(&r, &r).edits(), 0);
        let e = word_errors(&r, &normalize("the cat sat on a mat"));
        assert_eq!((e.substitutions, e.deletions, e.insertions), (1, 0, 0));
        let e = word_errors(&r, &normalize("the cat sat on mat"));
        assert_eq!((e.substitutions, e.deletions, e.insertions), (0, 1, 0));
        let e = word_errors(&r, &normalize("the big cat sat on the mat"));
        assert_eq!((e.substitutions, e.deletions, e.insertions), (0, 0, 1));
        assert!((e.rate() - 1.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn rate_edges() {
        assert_eq!(wer("", ""), 0.0);
        assert_eq!(wer("", "noise"), 1.0);
        assert_eq!(wer("one two", ""), 1.0);
        // Insertions can push the rate above 1.
        assert_eq!(wer("a", "b c d"), 3.0);
        assert_eq!(wer("Hello there.", "hello there"), 0.0);
    }

    #[test]
    fn distance_is_symmetric_in_edits() {
        let a = normalize("a b c d e f");
        let b = normalize("a x c e f g h");
        assert_eq!(word_errors(&a, &b).edits(), word_errors(&b, &a).edits());
        assert_eq!(word_errors(&a, &b).edits(), 4);
    }
}
