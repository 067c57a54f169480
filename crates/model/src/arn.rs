//! ECS ARNs: `arn:aws:ecs:REGION:ACCOUNT:RESOURCE_TYPE/RESOURCE`.

use std::fmt;

/// The tenancy every resource lives in. The account comes from the access
/// key, the region from the request's SigV4 credential scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Scope {
            account: account.into(),
            region: region.into(),
        }
    }

    pub fn arn(&self, resource_type: &str, resource: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:{}/{}",
            self.region, self.account, resource_type, resource
        )
    }

    pub fn cluster_arn(&self, name: &str) -> String {
        self.arn("cluster", name)
    }

    pub fn task_definition_arn(&self, family: &str, revision: i32) -> String {
        self.arn("task-definition", &format!("{family}:{revision}"))
    }

    pub fn task_arn(&self, cluster: &str, id: &str) -> String {
        self.arn("task", &format!("{cluster}/{id}"))
    }

    pub fn container_instance_arn(&self, cluster: &str, id: &str) -> String {
        self.arn("container-instance", &format!("{cluster}/{id}"))
    }

    pub fn container_arn(&self, cluster: &str, task_id: &str, id: &str) -> String {
        self.arn("container", &format!("{cluster}/{task_id}/{id}"))
    }

    /// The IAM principal ARN of the account root, which is what ECS reports
    /// as `registeredBy` and as the default `principalArn` of settings.
    pub fn root_principal(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account)
    }
}

/// A parsed ECS ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub region: String,
    pub account: String,
    pub resource_type: String,
    pub resource: String,
}

impl Arn {
    pub fn parse(s: &str) -> Option<Arn> {
        let mut parts = s.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let partition = parts.next()?;
        if !partition.starts_with("aws") {
            return None;
        }
        if parts.next()? != "ecs" {
            return None;
        }
        let region = parts.next()?.to_string();
        let account = parts.next()?.to_string();
        let rest = parts.next()?;
        let (resource_type, resource) = rest.split_once('/')?;
        if region.is_empty() || account.is_empty() || resource.is_empty() {
            return None;
        }
        Some(Arn {
            region,
            account,
            resource_type: resource_type.to_string(),
            resource: resource.to_string(),
        })
    }

    pub fn in_scope(&self, scope: &Scope) -> bool {
        self.region == scope.region && self.account == scope.account
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:aws:ecs:{}:{}:{}/{}",
            self.region, self.account, self.resource_type, self.resource
        )
    }
}

/// What a `cluster` parameter named: ECS accepts a short name or a full ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRef {
    /// A name in the caller's scope.
    Name(String),
    /// An ARN naming another account or region: it can never be found.
    Foreign,
}

/// Resolves the `cluster` parameter; absent means `default`, as in ECS.
pub fn cluster_ref(scope: &Scope, given: Option<&str>) -> ClusterRef {
    match given {
        None | Some("") => ClusterRef::Name("default".to_string()),
        Some(s) if s.starts_with("arn:") => match Arn::parse(s) {
            Some(arn) if arn.resource_type == "cluster" && arn.in_scope(scope) => {
                ClusterRef::Name(arn.resource)
            }
            _ => ClusterRef::Foreign,
        },
        Some(s) => ClusterRef::Name(s.to_string()),
    }
}

/// A child resource of a cluster (task, container instance) named by a
/// bare id or by an ARN `.../TYPE/CLUSTER/ID`. Returns the id when the
/// reference can belong to `cluster` in `scope`.
pub fn child_id(scope: &Scope, resource_type: &str, cluster: &str, given: &str) -> Option<String> {
    if !given.starts_with("arn:") {
        return (!given.is_empty() && !given.contains('/')).then(|| given.to_string());
    }
    let arn = Arn::parse(given)?;
    if arn.resource_type != resource_type || !arn.in_scope(scope) {
        return None;
    }
    match arn.resource.split_once('/') {
        Some((c, id)) if c == cluster && !id.is_empty() && !id.contains('/') => {
            Some(id.to_string())
        }
        // The old ARN format had no cluster segment.
        None => Some(arn.resource),
        _ => None,
    }
}

/// A task definition reference: `family`, `family:revision` or an ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDefRef {
    Family(String),
    Revision(String, i32),
    Foreign,
    Malformed,
}

pub fn task_definition_ref(scope: &Scope, given: &str) -> TaskDefRef {
    let local = if given.starts_with("arn:") {
        match Arn::parse(given) {
            Some(arn) if arn.resource_type == "task-definition" => {
                if !arn.in_scope(scope) {
                    return TaskDefRef::Foreign;
                }
                arn.resource
            }
            _ => return TaskDefRef::Malformed,
        }
    } else {
        given.to_string()
    };
    match local.rsplit_once(':') {
        None if !local.is_empty() => TaskDefRef::Family(local),
        Some((family, rev)) if !family.is_empty() => match rev.parse::<i32>() {
            Ok(r) if r > 0 => TaskDefRef::Revision(family.to_string(), r),
            _ => TaskDefRef::Malformed,
        },
        _ => TaskDefRef::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_refs() {
        let s = Scope::new("000000000000", "us-east-1");
        assert_eq!(cluster_ref(&s, None), ClusterRef::Name("default".into()));
        assert_eq!(cluster_ref(&s, Some("web")), ClusterRef::Name("web".into()));
        assert_eq!(
            cluster_ref(&s, Some("arn:aws:ecs:us-east-1:000000000000:cluster/web")),
            ClusterRef::Name("web".into())
        );
        assert_eq!(
            cluster_ref(&s, Some("arn:aws:ecs:eu-west-1:000000000000:cluster/web")),
            ClusterRef::Foreign
        );
        assert_eq!(
            cluster_ref(&s, Some("arn:aws:ecs:us-east-1:111111111111:cluster/web")),
            ClusterRef::Foreign
        );
    }

    #[test]
    fn task_definition_refs() {
        let s = Scope::new("000000000000", "us-east-1");
        assert_eq!(
            task_definition_ref(&s, "web"),
            TaskDefRef::Family("web".into())
        );
        assert_eq!(
            task_definition_ref(&s, "web:3"),
            TaskDefRef::Revision("web".into(), 3)
        );
        assert_eq!(
            task_definition_ref(
                &s,
                "arn:aws:ecs:us-east-1:000000000000:task-definition/web:7"
            ),
            TaskDefRef::Revision("web".into(), 7)
        );
        assert_eq!(task_definition_ref(&s, "web:0"), TaskDefRef::Malformed);
        assert_eq!(task_definition_ref(&s, "web:x"), TaskDefRef::Malformed);
        assert_eq!(
            task_definition_ref(
                &s,
                "arn:aws:ecs:us-east-1:111111111111:task-definition/web:7"
            ),
            TaskDefRef::Foreign
        );
    }
}
