//! The catalogue model: who owns what, and which interactions make up a flow.
//!
//! `Service`, `Interaction`, `Flow`, `Team` and `User` are plain data. They are
//! what the catalogue file declares and what the dependency graph learns; this
//! module does not load files (that is the server's job) and does not hold live
//! statistics (that is the graph's job).

use serde::{Deserialize, Serialize};

use crate::ids::{FlowName, ServiceName, TeamId, UserId};

/// How critical a service is; tier 1 is the most critical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tier(pub u8);

/// What kind of node a service is in the graph. Uninstrumented dependencies
/// (a database seen only from client spans) are still services, with a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    #[default]
    Service,
    Database,
    Cache,
    Queue,
    External,
}

/// A deployable unit that emits or receives calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: ServiceName,
    #[serde(default)]
    pub kind: ServiceKind,
    pub owner: Option<TeamId>,
    pub tier: Option<Tier>,
}

/// One edge of the dependency graph: caller → callee, for one operation.
/// The operation is empty when the callee does not name one (e.g. a TCP peer).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Interaction {
    pub caller: ServiceName,
    pub callee: ServiceName,
    #[serde(default)]
    pub operation: String,
}

impl std::fmt::Display for Interaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} → {}", self.caller, self.callee)?;
        if !self.operation.is_empty() {
            write!(f, " ({})", self.operation)?;
        }
        Ok(())
    }
}

/// A named critical user journey: an ordered set of interactions with an
/// owner team. Impact and paging follow flows across service boundaries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub name: FlowName,
    pub owner: TeamId,
    #[serde(default)]
    pub description: String,
    pub interactions: Vec<Interaction>,
}

impl Flow {
    /// Whether the flow passes through this service (as caller or callee).
    pub fn touches(&self, service: &ServiceName) -> bool {
        self.interactions.iter().any(|i| &i.caller == service || &i.callee == service)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    #[serde(default)]
    pub members: Vec<UserId>,
}

/// A person who can be paged. Contact methods are added by the response issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: Option<String>,
}
