//! Identifier conversion for generated code: wire names (camelCase member
//! names, SCREAMING_CASE / kebab-case enum values, shape names) to Rust
//! identifiers, plus keyword and collision handling.

use std::collections::BTreeSet;

/// Split an identifier-ish string into words.
///
/// Non-alphanumeric characters separate words. Inside an alphanumeric run a
/// new word starts at a lower/digit -> upper transition (`enableECS` ->
/// `enable|ECS`, `ec2Instance` -> `ec2|Instance`) and before the last capital
/// of an acronym that is followed by a lowercase letter (`ECSManaged` ->
/// `ECS|Managed`). Digits stick to the word before them (`X86`, `t4g`), and
/// `KiB`..`PiB` stay whole (`sizeInGiB` -> `size|In|GiB`).
pub fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    for run in s.split(|c: char| !c.is_ascii_alphanumeric()) {
        let chars: Vec<char> = run.chars().collect();
        let mut cur = String::new();
        for (i, &c) in chars.iter().enumerate() {
            if i > 0 && c.is_ascii_uppercase() {
                let prev = chars[i - 1];
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                let boundary = prev.is_ascii_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_ascii_uppercase() && next_lower);
                if boundary && !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            words.push(cur);
        }
    }
    // Binary unit prefixes stay one word: `sizeInGiB` -> `size|In|GiB`.
    let mut merged: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        let unit = matches!(
            merged.last().map(String::as_str),
            Some("Ki" | "Mi" | "Gi" | "Ti" | "Pi")
        );
        if unit && w == "B" {
            merged.last_mut().expect("checked").push('B');
        } else {
            merged.push(w);
        }
    }
    merged
}

/// `enableECSManagedTags` -> `enable_ecs_managed_tags`.
pub fn snake_case(s: &str) -> String {
    let words: Vec<String> = split_words(s)
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let mut out = words.join("_");
    if out.is_empty() {
        out.push_str("field");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// `MANAGED_INSTANCES` -> `ManagedInstances`, `json-file` -> `JsonFile`.
pub fn upper_camel(s: &str) -> String {
    let mut out = String::new();
    for w in split_words(s) {
        let mut cs = w.chars();
        if let Some(f) = cs.next() {
            out.push(f.to_ascii_uppercase());
            out.extend(cs.map(|c| c.to_ascii_lowercase()));
        }
    }
    out
}

/// Strict and reserved keywords of Rust 2021 (plus `gen`, reserved in 2024).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be written as raw identifiers.
const NO_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Make a snake_case name usable as a field identifier (`type` -> `r#type`,
/// `self` -> `self_`).
pub fn field_ident(snake: &str) -> String {
    if NO_RAW.contains(&snake) {
        format!("{snake}_")
    } else if KEYWORDS.contains(&snake) {
        format!("r#{snake}")
    } else {
        snake.to_string()
    }
}

/// Names a generated type must not take: prelude items the generated code
/// refers to unqualified, plus the module's own fixed items.
pub const RESERVED_TYPE_NAMES: &[&str] = &[
    "Box",
    "Clone",
    "Copy",
    "Debug",
    "Default",
    "Display",
    "Eq",
    "Err",
    "ErrorCode",
    "From",
    "FromStr",
    "Hash",
    "Into",
    "None",
    "Ok",
    "Operation",
    "Option",
    "Ord",
    "PartialEq",
    "PartialOrd",
    "Result",
    "Self",
    "Some",
    "String",
    "ToString",
    "Vec",
];

/// Pick a Rust type name for a shape: the shape name itself when it already
/// is a plain UpperCamel identifier, otherwise its UpperCamel conversion;
/// names in `taken` (or reserved) get a `Shape` suffix, then a number.
pub fn type_ident(shape: &str, taken: &BTreeSet<String>) -> String {
    let plain = shape.starts_with(|c: char| c.is_ascii_uppercase())
        && shape.chars().all(|c| c.is_ascii_alphanumeric());
    let mut base = if plain {
        shape.to_string()
    } else {
        upper_camel(shape)
    };
    if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
        base.insert_str(0, "Shape");
    }
    dedupe(base, "Shape", |n| {
        taken.contains(n) || RESERVED_TYPE_NAMES.contains(&n)
    })
}

/// Enum variant identifier for a wire value; `Unknown` is taken by the
/// catch-all variant, so a model value `UNKNOWN` becomes `UnknownValue`.
pub fn variant_ident(value: &str, taken: &BTreeSet<String>) -> String {
    let mut base = upper_camel(value);
    if base.is_empty() {
        base.push_str("Empty");
    }
    if base.starts_with(|c: char| c.is_ascii_digit()) {
        base.insert(0, 'V');
    }
    dedupe(base, "Value", |n| {
        taken.contains(n) || n == "Unknown" || n == "Self"
    })
}

/// Field identifier for a member, deduplicated within its struct.
pub fn member_ident(member: &str, taken: &BTreeSet<String>) -> String {
    let base = field_ident(&snake_case(member));
    if !taken.contains(&base) {
        return base;
    }
    let stem = base.trim_start_matches("r#").trim_end_matches('_');
    (2..)
        .map(|i| format!("{stem}_{i}"))
        .find(|n| !taken.contains(n))
        .expect("unbounded")
}

fn dedupe(base: String, suffix: &str, is_taken: impl Fn(&str) -> bool) -> String {
    if !is_taken(&base) {
        return base;
    }
    let with_suffix = format!("{base}{suffix}");
    if !is_taken(&with_suffix) {
        return with_suffix;
    }
    (2..)
        .map(|i| format!("{base}{suffix}{i}"))
        .find(|n| !is_taken(n))
        .expect("unbounded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake() {
        assert_eq!(
            snake_case("enableECSManagedTags"),
            "enable_ecs_managed_tags"
        );
        assert_eq!(snake_case("ec2InstanceId"), "ec2_instance_id");
        assert_eq!(snake_case("bindIP"), "bind_ip");
        assert_eq!(snake_case("privateIpv4Address"), "private_ipv4_address");
        assert_eq!(snake_case("totalLocalStorageGB"), "total_local_storage_gb");
        assert_eq!(snake_case("sizeInGiB"), "size_in_gib");
        assert_eq!(snake_case("memoryGiBPerVCpu"), "memory_gib_per_v_cpu");
        assert_eq!(snake_case("memoryMiB"), "memory_mib");
        assert_eq!(
            snake_case("InternalStreamingException"),
            "internal_streaming_exception"
        );
        assert_eq!(field_ident(&snake_case("type")), "r#type");
        assert_eq!(field_ident(&snake_case("self")), "self_");
    }

    #[test]
    fn camel() {
        assert_eq!(upper_camel("FARGATE"), "Fargate");
        assert_eq!(upper_camel("awsvpc"), "Awsvpc");
        assert_eq!(upper_camel("MANAGED_INSTANCES"), "ManagedInstances");
        assert_eq!(upper_camel("json-file"), "JsonFile");
        assert_eq!(upper_camel("X86_64"), "X8664");
        assert_eq!(
            upper_camel("attribute:ecs.availability-zone"),
            "AttributeEcsAvailabilityZone"
        );
        assert_eq!(upper_camel("fargateFIPSMode"), "FargateFipsMode");
        assert_eq!(
            upper_camel("WINDOWS_SERVER_20H2_CORE"),
            "WindowsServer20H2Core"
        );
    }

    #[test]
    fn collisions() {
        let mut taken = BTreeSet::new();
        assert_eq!(variant_ident("UNKNOWN", &taken), "UnknownValue");
        taken.insert("JsonFile".to_string());
        assert_eq!(variant_ident("JSON_FILE", &taken), "JsonFileValue");
        assert_eq!(variant_ident("1", &taken), "V1");
        assert_eq!(type_ident("Option", &BTreeSet::new()), "OptionShape");
        assert_eq!(type_ident("__string", &BTreeSet::new()), "StringShape");
        let mut fields = BTreeSet::new();
        fields.insert("foo_bar".to_string());
        assert_eq!(member_ident("FooBar", &fields), "foo_bar_2");
    }
}
