//! The catalogue: teams, services (owner, tier), flows and declared
//! dependencies, parsed from YAML text — Faultline's own format or Backstage
//! `catalog-info.yaml` entities.
//!
//! Faultline's format (every section optional):
//!
//! ```yaml
//! teams:
//!   - { id: payments, name: Payments, members: [alice] }
//! services:
//!   - { name: checkout, owner: payments, tier: 1, depends_on: [payments-db] }
//!   - { name: payments-db, kind: database, owner: payments }
//! flows:
//!   - name: checkout
//!     owner: payments
//!     description: A customer pays for their basket.
//!     interactions:
//!       - { caller: frontend, callee: checkout, operation: POST /checkout }
//!       - { caller: checkout, callee: payments-db }
//! ```
//!
//! Backstage: `Component` and `Resource` become services (owner from
//! `spec.owner`, `spec.dependsOn` becomes declared dependencies), `System`
//! becomes a system grouping its components, `Group` becomes a team.
//!
//! Not here: reading files (callers pass the text) or comparing with the
//! learned graph (that is `DependencyGraph::drift`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{FlowName, IdError, ServiceName, TeamId};
use crate::model::{Flow, Interaction, Service, ServiceKind, Team, Tier};

/// A Backstage system: a named group of services.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct System {
    pub name: String,
    pub owner: Option<TeamId>,
    pub services: Vec<ServiceName>,
}

/// Everything the catalogue declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    pub teams: Vec<Team>,
    pub services: Vec<Service>,
    pub flows: Vec<Flow>,
    pub systems: Vec<System>,
    /// Declared dependencies (`depends_on`, Backstage `dependsOn`), operation empty.
    pub dependencies: Vec<Interaction>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("catalogue YAML: {0}")]
    Yaml(String),
    #[error("catalogue entity {entity:?}: {reason}")]
    Entity { entity: String, reason: String },
}

impl From<IdError> for CatalogueError {
    fn from(e: IdError) -> CatalogueError {
        CatalogueError::Entity { entity: e.input.clone(), reason: e.reason.to_owned() }
    }
}

/// A consistency problem that does not stop the catalogue loading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueIssue {
    pub subject: String,
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    teams: Vec<Team>,
    #[serde(default)]
    services: Vec<ServiceDecl>,
    #[serde(default)]
    flows: Vec<Flow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceDecl {
    name: ServiceName,
    #[serde(default)]
    kind: ServiceKind,
    owner: Option<TeamId>,
    tier: Option<Tier>,
    #[serde(default)]
    depends_on: Vec<ServiceName>,
}

#[derive(Deserialize)]
struct Entity {
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    spec: EntitySpec,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EntitySpec {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    members: Vec<String>,
}

/// `group:default/payments` → `payments`; `component:checkout` → `checkout`.
fn entity_ref_name(r: &str) -> &str {
    let r = r.split_once(':').map_or(r, |(_, rest)| rest);
    r.rsplit_once('/').map_or(r, |(_, name)| name)
}

impl Catalogue {
    /// Parses Faultline's catalogue format.
    pub fn from_yaml(text: &str) -> Result<Catalogue, CatalogueError> {
        let doc: FileDoc = serde_saphyr::from_str(text).map_err(|e| CatalogueError::Yaml(e.to_string()))?;
        let mut c = Catalogue { teams: doc.teams, flows: doc.flows, ..Catalogue::default() };
        for s in doc.services {
            for d in &s.depends_on {
                c.dependencies.push(Interaction { caller: s.name.clone(), callee: d.clone(), operation: String::new() });
            }
            c.services.push(Service { name: s.name, kind: s.kind, owner: s.owner, tier: s.tier });
        }
        Ok(c)
    }

    /// Imports Backstage entities (one or more YAML documents separated by
    /// `---`). Kinds other than Component, Resource, System and Group are
    /// skipped.
    pub fn from_backstage_yaml(text: &str) -> Result<Catalogue, CatalogueError> {
        let docs: Vec<Entity> = serde_saphyr::from_multiple(text).map_err(|e| CatalogueError::Yaml(e.to_string()))?;
        let mut c = Catalogue::default();
        let mut systems: BTreeMap<String, System> = BTreeMap::new();
        for e in docs {
            let name = e.metadata.name.as_str();
            let owner = e.spec.owner.as_deref().map(|o| TeamId::new(entity_ref_name(o))).transpose()?;
            match e.kind.as_str() {
                "Component" | "Resource" => {
                    let sn = ServiceName::new(name)?;
                    let kind = match (e.kind.as_str(), e.spec.kind.as_deref()) {
                        ("Resource", Some("database")) => ServiceKind::Database,
                        ("Resource", Some("cache")) => ServiceKind::Cache,
                        ("Resource", Some("queue" | "topic")) => ServiceKind::Queue,
                        ("Resource", _) => ServiceKind::External,
                        _ => ServiceKind::Service,
                    };
                    for d in &e.spec.depends_on {
                        c.dependencies.push(Interaction { caller: sn.clone(), callee: ServiceName::new(entity_ref_name(d))?, operation: String::new() });
                    }
                    if let Some(sys) = &e.spec.system {
                        let sys_name = entity_ref_name(sys).to_owned();
                        systems
                            .entry(sys_name.clone())
                            .or_insert_with(|| System { name: sys_name, owner: None, services: Vec::new() })
                            .services
                            .push(sn.clone());
                    }
                    c.services.push(Service { name: sn, kind, owner, tier: None });
                }
                "System" => {
                    let s = systems.entry(name.to_owned()).or_insert_with(|| System { name: name.to_owned(), owner: None, services: Vec::new() });
                    s.owner = owner;
                }
                "Group" => c.teams.push(Team {
                    id: TeamId::new(name)?,
                    name: e.metadata.title.unwrap_or_else(|| name.to_owned()),
                    members: e.spec.members.iter().map(|m| crate::ids::UserId::new(entity_ref_name(m))).collect::<Result<_, _>>()?,
                }),
                _ => {}
            }
        }
        c.systems = systems.into_values().collect();
        Ok(c)
    }

    /// Adds everything from `other` (later declarations of the same service,
    /// team or flow replace earlier ones).
    pub fn merge(&mut self, other: Catalogue) {
        for t in other.teams {
            self.teams.retain(|x| x.id != t.id);
            self.teams.push(t);
        }
        for s in other.services {
            self.services.retain(|x| x.name != s.name);
            self.services.push(s);
        }
        for f in other.flows {
            self.flows.retain(|x| x.name != f.name);
            self.flows.push(f);
        }
        self.systems.extend(other.systems);
        self.dependencies.extend(other.dependencies);
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name.as_str() == name)
    }

    pub fn flow(&self, name: &FlowName) -> Option<&Flow> {
        self.flows.iter().find(|f| &f.name == name)
    }

    /// Every declared interaction: flow steps and declared dependencies, deduplicated.
    pub fn declared_interactions(&self) -> Vec<Interaction> {
        let set: BTreeSet<Interaction> = self.flows.iter().flat_map(|f| f.interactions.iter().cloned()).chain(self.dependencies.iter().cloned()).collect();
        set.into_iter().collect()
    }

    /// Consistency problems: owners that are not declared teams, flow steps
    /// naming undeclared services, duplicate names.
    pub fn issues(&self) -> Vec<CatalogueIssue> {
        let mut out = Vec::new();
        let teams: BTreeSet<&TeamId> = self.teams.iter().map(|t| &t.id).collect();
        let services: BTreeSet<&ServiceName> = self.services.iter().map(|s| &s.name).collect();
        let mut seen = BTreeSet::new();
        for s in &self.services {
            if !seen.insert(&s.name) {
                out.push(CatalogueIssue { subject: s.name.to_string(), problem: "service declared twice".into() });
            }
            if let Some(o) = &s.owner
                && !teams.is_empty()
                && !teams.contains(o)
            {
                out.push(CatalogueIssue { subject: s.name.to_string(), problem: format!("owner team {o} is not declared") });
            }
        }
        for f in &self.flows {
            if !teams.is_empty() && !teams.contains(&f.owner) {
                out.push(CatalogueIssue { subject: format!("flow {}", f.name), problem: format!("owner team {} is not declared", f.owner) });
            }
            for i in &f.interactions {
                for s in [&i.caller, &i.callee] {
                    if !services.is_empty() && !services.contains(s) {
                        out.push(CatalogueIssue { subject: format!("flow {}", f.name), problem: format!("step {i} names undeclared service {s}") });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = r#"
teams:
  - { id: payments, name: Payments, members: [alice] }
  - { id: storefront, name: Storefront }
services:
  - { name: frontend, owner: storefront, tier: 1 }
  - { name: checkout, owner: payments, tier: 1, depends_on: [payments-db] }
  - { name: payments-db, kind: database, owner: payments }
flows:
  - name: checkout
    owner: payments
    description: A customer pays for their basket.
    interactions:
      - { caller: frontend, callee: checkout, operation: POST /checkout }
      - { caller: checkout, callee: payments-db }
"#;

    #[test]
    fn parses_own_format() {
        let c = Catalogue::from_yaml(OWN).unwrap();
        assert_eq!(c.teams.len(), 2);
        assert_eq!(c.services.len(), 3);
        assert_eq!(c.service("checkout").unwrap().tier, Some(Tier(1)));
        assert_eq!(c.service("payments-db").unwrap().kind, ServiceKind::Database);
        assert_eq!(c.flows[0].interactions[0].operation, "POST /checkout");
        assert_eq!(c.dependencies.len(), 1);
        assert_eq!(c.declared_interactions().len(), 2, "depends_on and the flow step are the same edge");
        assert!(c.issues().is_empty(), "{:?}", c.issues());
    }

    #[test]
    fn reports_inconsistencies() {
        let c = Catalogue::from_yaml(
            "teams: [{id: a, name: A}]\nservices: [{name: x, owner: b}]\nflows: [{name: f, owner: a, interactions: [{caller: x, callee: y}]}]\n",
        )
        .unwrap();
        let problems: Vec<String> = c.issues().into_iter().map(|i| i.problem).collect();
        assert_eq!(problems, vec!["owner team b is not declared".to_owned(), "step x → y names undeclared service y".to_owned()]);
    }

    #[test]
    fn rejects_bad_yaml_and_bad_names_with_a_message() {
        assert!(matches!(Catalogue::from_yaml("services: [{name: \"\"}]"), Err(CatalogueError::Yaml(_))));
        assert!(matches!(Catalogue::from_yaml("servics: []"), Err(CatalogueError::Yaml(m)) if m.contains("servics")));
        assert!(Catalogue::from_yaml("teams: [").is_err());
    }

    #[test]
    fn imports_backstage_entities() {
        let text = r#"
apiVersion: backstage.io/v1alpha1
kind: System
metadata: { name: shop }
spec: { owner: "group:default/storefront" }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: checkout, annotations: { "backstage.io/techdocs-ref": "dir:." } }
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
  system: shop
  dependsOn: ["component:default/payments", "resource:default/orders-db"]
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: { name: orders-db }
spec: { type: database, owner: payments }
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: { name: payments, title: Payments team }
spec: { type: team, members: ["user:default/alice"], children: [] }
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: { name: checkout-api }
spec: { type: openapi, owner: payments }
"#;
        let c = Catalogue::from_backstage_yaml(text).unwrap();
        assert_eq!(c.services.len(), 2);
        assert_eq!(c.service("checkout").unwrap().owner.as_ref().unwrap().as_str(), "payments");
        assert_eq!(c.service("orders-db").unwrap().kind, ServiceKind::Database);
        let deps: Vec<String> = c.dependencies.iter().map(|i| i.to_string()).collect();
        assert_eq!(deps, vec!["checkout → payments", "checkout → orders-db"]);
        assert_eq!(c.systems.len(), 1);
        assert_eq!(c.systems[0].owner.as_ref().unwrap().as_str(), "storefront");
        assert_eq!(c.systems[0].services[0].as_str(), "checkout");
        assert_eq!(c.teams[0].name, "Payments team");
        assert_eq!(c.teams[0].members[0].as_str(), "alice");
    }
}
