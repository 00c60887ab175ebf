//! A strict checker for Kubernetes structural schemas (a CRD's `openAPIV3Schema`), so every
//! body homeostat can write is checked against Istio's own CRDs.
//!
//! Why not a JSON-schema crate: the API server's rules are not JSON Schema's. An object
//! without `additionalProperties` is closed (unknown fields are pruned, and homeostat treats
//! them as errors), `x-kubernetes-preserve-unknown-fields` opens it, `x-kubernetes-int-or-string`
//! is its own type and `nullable` replaces `type: [x, null]`. A general validator would accept
//! unknown fields that Kubernetes silently drops, which is the very bug this check exists to
//! catch. What is not checked: CEL rules (`x-kubernetes-validations`; durations are checked by
//! parsing them Go-style instead), `pattern` and `format`.

use serde_json::Value;

/// One violation, with the JSON path of the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// How strictly `required` is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    /// A whole object: every `required` field must be present.
    Check,
    /// A server-side-apply body, which is merged with the live object before the API server
    /// validates it: fields it does not own may be absent.
    Partial,
}

/// Checks `value` against `schema`; every violation, never just the first.
pub fn check(schema: &Value, value: &Value, required: Required) -> Vec<Violation> {
    let mut out = Vec::new();
    walk(schema, value, "", required, &mut out);
    out
}

fn push(out: &mut Vec<Violation>, path: &str, message: String) {
    out.push(Violation {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path.to_string()
        },
        message,
    });
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn walk(schema: &Value, value: &Value, path: &str, required: Required, out: &mut Vec<Violation>) {
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            push(out, path, "null is not allowed here".into());
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            push(
                out,
                path,
                format!("expected an integer or a string, got {value}"),
            );
        }
        return;
    }
    if let Some(enum_) = schema.get("enum").and_then(Value::as_array)
        && !enum_.contains(value)
    {
        push(
            out,
            path,
            format!("{value} is not one of {}", Value::Array(enum_.clone())),
        );
    }
    for key in ["minimum", "maximum"] {
        if let (Some(bound), Some(v)) = (schema.get(key).and_then(Value::as_f64), value.as_f64()) {
            let bad = if key == "minimum" {
                v < bound
            } else {
                v > bound
            };
            if bad {
                push(out, path, format!("{v} violates {key} {bound}"));
            }
        }
    }
    if required == Required::Check {
        combinators(schema, value, path, out);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => object(schema, value, path, required, out),
        Some("array") => match value.as_array() {
            Some(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        walk(item_schema, item, &format!("{path}[{i}]"), required, out);
                    }
                }
            }
            None => push(out, path, format!("expected a list, got {value}")),
        },
        Some("string") if !value.is_string() => {
            push(out, path, format!("expected a string, got {value}"))
        }
        Some("integer") if !(value.is_i64() || value.is_u64()) => {
            push(out, path, format!("expected an integer, got {value}"))
        }
        Some("number") if !value.is_number() => {
            push(out, path, format!("expected a number, got {value}"))
        }
        Some("boolean") if !value.is_boolean() => {
            push(out, path, format!("expected a boolean, got {value}"))
        }
        _ => {}
    }
}

fn object(schema: &Value, value: &Value, path: &str, required: Required, out: &mut Vec<Violation>) {
    let Some(map) = value.as_object() else {
        push(out, path, format!("expected an object, got {value}"));
        return;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let open = flag(schema, "x-kubernetes-preserve-unknown-fields");
    for (k, v) in map {
        let child = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match (props.and_then(|p| p.get(k)), additional) {
            (Some(s), _) => walk(s, v, &child, required, out),
            (None, Some(Value::Bool(true))) => {}
            (None, Some(s)) if s.is_object() => walk(s, v, &child, required, out),
            (None, _) if open => {}
            (None, _) => push(out, &child, "unknown field".into()),
        }
    }
    if required == Required::Check
        && let Some(req) = schema.get("required").and_then(Value::as_array)
    {
        for r in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                let child = if path.is_empty() {
                    r.to_string()
                } else {
                    format!("{path}.{r}")
                };
                push(out, &child, "required field is missing".into());
            }
        }
    }
}

/// Checks a whole resource: `apiVersion`, `kind` and `metadata` are the API server's own (a
/// CRD schema does not list them), everything else is checked against `schema`.
pub fn check_resource(schema: &Value, resource: &Value, required: Required) -> Vec<Violation> {
    let mut rest = resource.clone();
    if let Some(map) = rest.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            map.remove(k);
        }
    }
    check(schema, &rest, required)
}

/// `oneOf` / `anyOf` / `allOf` / `not`: in a structural schema these hold value validations
/// only (typically which fields may be set together), checked here against the same value.
fn combinators(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let passes = |s: &Value| check_sub(s, value).is_empty();
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            out.extend(check_sub(s, value).into_iter().map(|v| prefixed(path, v)));
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(passes)
    {
        push(out, path, "matches none of the anyOf alternatives".into());
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let n = one.iter().filter(|s| passes(s)).count();
        if n != 1 {
            push(
                out,
                path,
                format!("matches {n} of the oneOf alternatives, not exactly 1"),
            );
        }
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        push(
            out,
            path,
            "matches a `not` schema (these fields may not be set together)".into(),
        );
    }
}

fn check_sub(schema: &Value, value: &Value) -> Vec<Violation> {
    // Value validations only: a sub-schema without `type`/`properties` must not flag fields
    // as unknown, so only `required`, bounds, enums and nested combinators apply.
    let mut out = Vec::new();
    if let (Some(req), Some(map)) = (
        schema.get("required").and_then(Value::as_array),
        value.as_object(),
    ) {
        for r in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                push(&mut out, r, "required".into());
            }
        }
    }
    if let (Some(props), Some(map)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for (k, s) in props {
            if let Some(v) = map.get(k) {
                out.extend(check_sub(s, v));
            }
        }
    }
    combinators(schema, value, "", &mut out);
    out
}

fn prefixed(path: &str, v: Violation) -> Violation {
    Violation {
        path: if path.is_empty() {
            v.path
        } else {
            format!("{path}.{}", v.path)
        },
        message: v.message,
    }
}

/// The `openAPIV3Schema` of `kind` at `version` in a multi-document CRD YAML (e.g. Istio's).
pub fn crd_schema(crds_yaml: &str, kind: &str, version: &str) -> Result<Value, String> {
    use serde::Deserialize;
    for doc in serde_yaml::Deserializer::from_str(crds_yaml) {
        let v = Value::deserialize(doc).map_err(|e| format!("parsing CRDs: {e}"))?;
        if v.pointer("/spec/names/kind").and_then(Value::as_str) != Some(kind) {
            continue;
        }
        let versions = v.pointer("/spec/versions").and_then(Value::as_array);
        for ver in versions.into_iter().flatten() {
            if ver.get("name").and_then(Value::as_str) == Some(version) {
                return ver
                    .pointer("/schema/openAPIV3Schema")
                    .cloned()
                    .ok_or_else(|| format!("{kind} {version} has no openAPIV3Schema"));
            }
        }
    }
    Err(format!("no CRD for kind {kind} version {version}"))
}
