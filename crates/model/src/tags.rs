//! Tag rules shared by every taggable resource.

use crate::ModelError;
use stevedore_api::ecs::Tag;

pub const MAX_TAGS: usize = 50;

fn allowed_char(c: char) -> bool {
    // The model's pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*
    c.is_alphabetic()
        || c.is_numeric()
        || c.is_whitespace()
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

fn check_one(key: &str, value: &str) -> Result<(), ModelError> {
    let klen = key.chars().count();
    if klen == 0 || klen > 128 {
        return Err(ModelError::invalid(format!(
            "Tag key '{key}' must be 1 to 128 characters long."
        )));
    }
    if value.chars().count() > 256 {
        return Err(ModelError::invalid(format!(
            "The value of tag '{key}' must be at most 256 characters long."
        )));
    }
    if !key.chars().all(allowed_char) {
        return Err(ModelError::invalid(format!(
            "Tag key '{key}' contains characters that are not allowed. Use letters, numbers, spaces and _ . : / = + - @."
        )));
    }
    if !value.chars().all(allowed_char) {
        return Err(ModelError::invalid(format!(
            "The value of tag '{key}' contains characters that are not allowed. Use letters, numbers, spaces and _ . : / = + - @."
        )));
    }
    if key.len() >= 4 && key[..4].eq_ignore_ascii_case("aws:") {
        return Err(ModelError::invalid(format!(
            "Tag key '{key}' uses the reserved prefix 'aws:', which only AWS may use."
        )));
    }
    Ok(())
}

/// Validates tags given by a user and returns them in a canonical form.
/// A later tag with the same key wins, as ECS does when tags repeat.
pub fn validate(tags: &[Tag]) -> Result<Vec<Tag>, ModelError> {
    let mut out: Vec<Tag> = Vec::with_capacity(tags.len());
    for t in tags {
        let key = t
            .key
            .as_deref()
            .ok_or_else(|| ModelError::invalid("Every tag needs a key."))?;
        let value = t.value.as_deref().unwrap_or("");
        check_one(key, value)?;
        match out.iter_mut().find(|o| o.key.as_deref() == Some(key)) {
            Some(existing) => existing.value = Some(value.to_string()),
            None => out.push(Tag {
                key: Some(key.to_string()),
                value: Some(value.to_string()),
            }),
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ModelError::invalid(format!(
            "A resource can have at most {MAX_TAGS} tags; {} were given.",
            out.len()
        )));
    }
    Ok(out)
}

/// Applies TagResource: new keys are added, existing keys overwritten.
pub fn merge(existing: &[Tag], new: &[Tag]) -> Result<Vec<Tag>, ModelError> {
    let new = validate(new)?;
    let mut out = existing.to_vec();
    for t in new {
        match out.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value,
            None => out.push(t),
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ModelError::invalid(format!(
            "A resource can have at most {MAX_TAGS} tags; this request would leave it with {}.",
            out.len()
        )));
    }
    Ok(out)
}

/// Applies UntagResource. Keys that are absent are ignored, as in ECS.
pub fn remove(existing: &[Tag], keys: &[String]) -> Vec<Tag> {
    existing
        .iter()
        .filter(|t| !keys.iter().any(|k| t.key.as_deref() == Some(k.as_str())))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn rules() {
        assert!(validate(&[tag("team", "a b@c")]).is_ok());
        let e = validate(&[tag("AWS:x", "1")]).unwrap_err();
        assert!(e.message.contains("reserved prefix"), "{}", e.message);
        let e = validate(&[tag("", "1")]).unwrap_err();
        assert!(e.message.contains("1 to 128"));
        let e = validate(&[tag("k", &"v".repeat(257))]).unwrap_err();
        assert!(e.message.contains("256"));
        let e = validate(&[tag("k!", "v")]).unwrap_err();
        assert!(e.message.contains("not allowed"));
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(validate(&many).unwrap_err().message.contains("at most 50"));
        assert_eq!(
            validate(&[tag("a", "1"), tag("a", "2")]).unwrap(),
            vec![tag("a", "2")]
        );
    }

    #[test]
    fn merge_and_remove() {
        let base = vec![tag("a", "1"), tag("b", "2")];
        let merged = merge(&base, &[tag("b", "3"), tag("c", "4")]).unwrap();
        assert_eq!(merged, vec![tag("a", "1"), tag("b", "3"), tag("c", "4")]);
        assert_eq!(
            remove(&merged, &["a".into(), "zz".into()]),
            vec![tag("b", "3"), tag("c", "4")]
        );
        let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(merge(&fifty, &[tag("new", "v")]).is_err());
    }
}
