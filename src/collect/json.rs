//! Building upstream JSON faithfully. The Rust SDK's output types are not serde types,
//! so payloads for modelled outputs are written here with the API's own member names,
//! in the API's member order, with absent members left out (never `null`).

use aws_smithy_types::DateTime;
use serde_json::Value;

/// A JSON object written in insertion order.
#[derive(Debug, Default, Clone)]
pub struct Obj {
    out: String,
}

impl Obj {
    pub fn new() -> Self {
        Obj {
            out: String::from("{"),
        }
    }

    fn key(&mut self, k: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        self.out.push_str(&Value::String(k.to_string()).to_string());
        self.out.push(':');
    }

    /// A member whose value is already JSON text.
    pub fn raw(mut self, k: &str, json: &str) -> Self {
        self.key(k);
        self.out.push_str(json);
        self
    }

    pub fn value(self, k: &str, v: &Value) -> Self {
        let text = v.to_string();
        self.raw(k, &text)
    }

    pub fn str(self, k: &str, v: Option<&str>) -> Self {
        match v {
            Some(s) => self.value(k, &Value::String(s.to_string())),
            None => self,
        }
    }

    pub fn i64(self, k: &str, v: Option<i64>) -> Self {
        match v {
            Some(n) => self.raw(k, &n.to_string()),
            None => self,
        }
    }

    pub fn i32(self, k: &str, v: Option<i32>) -> Self {
        self.i64(k, v.map(i64::from))
    }

    pub fn f64(self, k: &str, v: Option<f64>) -> Self {
        match v.and_then(serde_json::Number::from_f64) {
            Some(n) => self.value(k, &Value::Number(n)),
            None => self,
        }
    }

    pub fn bool(self, k: &str, v: Option<bool>) -> Self {
        match v {
            Some(b) => self.raw(k, if b { "true" } else { "false" }),
            None => self,
        }
    }

    /// A list of strings (written even when empty, as the APIs do for list members).
    pub fn strs(self, k: &str, v: Option<&[String]>) -> Self {
        match v {
            Some(items) => {
                let arr = Value::Array(items.iter().map(|s| Value::String(s.clone())).collect());
                self.value(k, &arr)
            }
            None => self,
        }
    }

    /// A list of objects built by `f`.
    pub fn objs<T>(self, k: &str, v: Option<&[T]>, f: impl Fn(&T) -> Obj) -> Self {
        match v {
            Some(items) => {
                let parts: Vec<String> = items.iter().map(|i| f(i).finish()).collect();
                let text = format!("[{}]", parts.join(","));
                self.raw(k, &text)
            }
            None => self,
        }
    }

    /// A string map, keys sorted (the APIs give no order).
    pub fn map<V: Clone + Into<Value>>(
        self,
        k: &str,
        v: Option<&std::collections::HashMap<String, V>>,
    ) -> Self {
        match v {
            Some(m) => {
                let sorted: serde_json::Map<String, Value> = m
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect();
                self.value(k, &Value::Object(sorted))
            }
            None => self,
        }
    }

    /// A timestamp as the JSON and query protocols print it: "2025-05-17T02:28:15.450Z".
    pub fn time(self, k: &str, v: Option<&DateTime>) -> Self {
        match v {
            Some(t) => self.value(k, &Value::String(iso_millis(t))),
            None => self,
        }
    }

    /// A timestamp as epoch seconds (the awsJson protocols' default), millisecond precision.
    pub fn epoch_seconds(self, k: &str, v: Option<&DateTime>) -> Self {
        match v {
            Some(t) => {
                let ms = millis(t);
                let text = if ms % 1000 == 0 {
                    format!("{}", ms / 1000)
                } else {
                    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
                        .trim_end_matches('0')
                        .to_string()
                };
                self.raw(k, &text)
            }
            None => self,
        }
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Epoch milliseconds of an SDK timestamp.
pub fn millis(t: &DateTime) -> i64 {
    t.secs()
        .saturating_mul(1000)
        .saturating_add(i64::from(t.subsec_nanos() / 1_000_000))
}

/// An SDK timestamp from epoch milliseconds.
pub fn from_millis(ms: i64) -> DateTime {
    DateTime::from_millis(ms)
}

/// "2025-05-17T02:28:15.450Z": always milliseconds and `Z`, as AWS writes them.
pub fn iso_millis(t: &DateTime) -> String {
    crate::model::fmt_time(millis(t))
}

/// Removes insignificant whitespace (outside strings) so a payload fits on one line of a
/// recording. The text is otherwise unchanged: member order, number spelling and string
/// escapes stay as upstream wrote them.
pub fn compact(json: &str) -> String {
    if !json.bytes().any(|b| b == b'\n' || b == b'\r') {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len());
    let mut in_str = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_order_and_skip_absent_members() {
        let o = Obj::new()
            .str("b", Some("x\"y"))
            .str("a", None)
            .i64("n", Some(5))
            .f64("t", Some(70.0))
            .bool("ok", Some(false))
            .strs("l", Some(&[]))
            .finish();
        assert_eq!(o, r#"{"b":"x\"y","n":5,"t":70.0,"ok":false,"l":[]}"#);
    }

    #[test]
    fn timestamps_as_aws_prints_them() {
        let t = DateTime::from_millis(1747448895450);
        assert_eq!(iso_millis(&t), "2025-05-17T02:28:15.450Z");
        assert_eq!(
            Obj::new().epoch_seconds("c", Some(&t)).finish(),
            r#"{"c":1747448895.45}"#
        );
        let whole = DateTime::from_millis(1747448895000);
        assert_eq!(
            Obj::new().epoch_seconds("c", Some(&whole)).finish(),
            r#"{"c":1747448895}"#
        );
    }

    #[test]
    fn compact_keeps_strings() {
        let s = "{\n  \"a\" : \"x y\\\" \\n\",\n \"b\": [1, 2]\n}";
        assert_eq!(compact(s), "{\"a\":\"x y\\\" \\n\",\"b\":[1,2]}");
        assert_eq!(compact("{\"a\": 1}"), "{\"a\": 1}");
    }
}
