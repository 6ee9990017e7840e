//! The bridge between BinaryPack [`Value`]s and JSON (`serde_json::Value`), plus JS-compatible
//! JSON measurements.
//!
//! Used for roster `meta`, `caps` grants (handed to `capability_manifest::Grant::sanitize`) and
//! app payloads. The conversion is lossy where JSON has no equivalent:
//! - [`Value::Bin`] becomes an array of byte numbers (`[1,2,3]`); it comes back as an array, not
//!   as binary. (JS `JSON.stringify` would write an ArrayBuffer as `{}`, losing the bytes.)
//! - NaN and ±infinity become `null`, as in `JSON.stringify`.
//! - [`Value::Nil`] becomes `null`; JSON `null` comes back as [`Value::Nil`].
//! - JSON numbers come back as [`Value::Int`] / [`Value::UInt`] when integral and representable,
//!   else [`Value::Float`]; an integral float such as `1.0` stays a float (it packs as an integer
//!   either way).
//!
//! Map key order is kept in both directions (the workspace enables `serde_json/preserve_order`).

use serde_json::Value as Json;

use super::Value;

/// Converts a value to JSON (lossy cases in the module docs).
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bin(b) => Json::Array(b.iter().map(|x| Json::from(*x)).collect()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

/// Converts JSON to a value (lossless except that integral floats stay floats).
pub fn from_json(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        Json::Object(map) => {
            Value::Map(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// `JSON.stringify(value).length` as a browser computes it (UTF-16 code units), stopping early
/// once the count exceeds `limit` (the returned number is then only known to be `> limit`).
///
/// Binary counts as `{}` (an ArrayBuffer has no enumerable keys), nil as `null`, numbers in JS
/// number formatting.
pub fn js_json_len(value: &Value, limit: usize) -> usize {
    let mut m = Measure { total: 0, limit };
    m.value(value);
    m.total
}

struct Measure {
    total: usize,
    limit: usize,
}

impl Measure {
    fn add(&mut self, n: usize) {
        self.total = self.total.saturating_add(n);
    }

    fn over(&self) -> bool {
        self.total > self.limit
    }

    fn value(&mut self, value: &Value) {
        if self.over() {
            return;
        }
        match value {
            Value::Nil => self.add(4),
            Value::Bool(true) => self.add(4),
            Value::Bool(false) => self.add(5),
            Value::Int(i) => self.add(i.to_string().len()),
            Value::UInt(u) => self.add(js_number_string(*u as f64).len()),
            Value::Float(f) if f.is_finite() => self.add(js_number_string(*f).len()),
            Value::Float(_) => self.add(4),
            Value::Str(s) => self.string(s),
            Value::Bin(_) => self.add(2),
            Value::Array(items) => {
                self.add(2 + items.len().saturating_sub(1));
                for item in items {
                    self.value(item);
                    if self.over() {
                        return;
                    }
                }
            }
            Value::Map(entries) => {
                self.add(2 + entries.len().saturating_sub(1));
                for (k, v) in entries {
                    self.string(k);
                    self.add(1);
                    self.value(v);
                    if self.over() {
                        return;
                    }
                }
            }
        }
    }

    fn string(&mut self, s: &str) {
        let mut n = 2usize;
        for c in s.chars() {
            n += match c {
                '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
                c if (c as u32) < 0x20 => 6,
                c => c.len_utf16(),
            };
        }
        self.add(n);
    }
}

/// `Number.prototype.toString()` for a double, as JS formats it.
pub(crate) fn js_number_string(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if f == 0.0 {
        return "0".to_owned();
    }
    // Shortest round-trip digits and the decimal exponent, e.g. "1.5e21".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    let n = exp + 1;
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let e = n - 1;
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&e.abs().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_number_strings() {
        let cases: &[(f64, &str)] = &[
            (0.5, "0.5"),
            (-0.25, "-0.25"),
            (123.456, "123.456"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (0.000001, "0.000001"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (-0.0, "0"),
        ];
        for (f, want) in cases {
            assert_eq!(js_number_string(*f), *want);
        }
    }

    #[test]
    fn json_length_matches_js_stringify() {
        // JSON.stringify({a:[1,"x\n",null,true],b:"é😀",c:0.5}) === '{"a":[1,"x\\n",null,true],"b":"é😀","c":0.5}'
        let v = Value::map([
            (
                "a",
                Value::Array(vec![
                    Value::Int(1),
                    Value::from("x\n"),
                    Value::Nil,
                    Value::Bool(true),
                ]),
            ),
            ("b", Value::from("é😀")),
            ("c", Value::Float(0.5)),
        ]);
        assert_eq!(js_json_len(&v, usize::MAX), 43);
        assert_eq!(js_json_len(&Value::Bin(vec![1, 2, 3]), usize::MAX), 2);
        assert_eq!(js_json_len(&Value::from("\u{1}"), usize::MAX), 8);
        assert!(js_json_len(&Value::Str("x".repeat(100)), 10) > 10);
    }

    #[test]
    fn json_round_trip_keeps_order() {
        let v = Value::map([
            ("z", Value::Int(-1)),
            (
                "a",
                Value::Array(vec![Value::Nil, Value::Float(0.5), Value::UInt(u64::MAX)]),
            ),
        ]);
        let j = to_json(&v);
        assert_eq!(
            j.to_string(),
            r#"{"z":-1,"a":[null,0.5,18446744073709551615]}"#
        );
        assert_eq!(from_json(&j), v);
        assert_eq!(to_json(&Value::Bin(vec![1, 2])), serde_json::json!([1, 2]));
        assert_eq!(to_json(&Value::Float(f64::NAN)), Json::Null);
    }
}
