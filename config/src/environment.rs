//! Where AudioLab is running (a musician's desktop, a cloud platform, a container, CI) and what
//! audio it can therefore do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentKind {
    Desktop,
    Cloud,
    Container,
    CiCd,
}

impl EnvironmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Cloud => "cloud",
            Self::Container => "container",
            Self::CiCd => "ci_cd",
        }
    }
}

/// What the audio engine of this process can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioCapability {
    /// A sound card drives the engine.
    Full,
    /// No engine in this process; it stores, imports and renders.
    ProcessingOnly,
    /// The engine runs on the mock clock with virtual devices.
    Mock,
    /// Audio is switched off.
    Disabled,
}

impl AudioCapability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::ProcessingOnly => "processing_only",
            Self::Mock => "mock",
            Self::Disabled => "disabled",
        }
    }
}

/// Variables cloud platforms set on their services (Render, Heroku, AWS, Cloud Run, Fly, Railway, Azure).
const CLOUD_MARKERS: &[&str] = &[
    "RENDER",
    "RENDER_SERVICE_ID",
    "DYNO",
    "AWS_EXECUTION_ENV",
    "K_SERVICE",
    "FLY_APP_NAME",
    "RAILWAY_ENVIRONMENT",
    "WEBSITE_SITE_NAME",
];
/// Variables CI systems set.
const CI_MARKERS: &[&str] = &["CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "CIRCLECI"];
/// Variables container orchestrators set.
const CONTAINER_MARKERS: &[&str] = &["KUBERNETES_SERVICE_HOST", "container"];

/// Classifies the environment: an explicit `override_kind` wins, then cloud markers, CI markers,
/// container markers (or `in_container`, e.g. `/.dockerenv` exists), else desktop.
/// `var` looks a variable up, so tests can pass a map instead of the process environment.
pub fn detect_environment(
    override_kind: Option<EnvironmentKind>,
    var: impl Fn(&str) -> Option<String>,
    in_container: bool,
) -> EnvironmentKind {
    let set = |name: &&str| var(name).is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    if let Some(kind) = override_kind {
        kind
    } else if CLOUD_MARKERS.iter().any(set) {
        EnvironmentKind::Cloud
    } else if CI_MARKERS.iter().any(set) {
        EnvironmentKind::CiCd
    } else if in_container || CONTAINER_MARKERS.iter().any(set) {
        EnvironmentKind::Container
    } else {
        EnvironmentKind::Desktop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn detect(vars: &[(&str, &str)], in_container: bool) -> EnvironmentKind {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        detect_environment(None, |k| map.get(k).cloned(), in_container)
    }

    #[test]
    fn platforms_are_recognised_by_their_variables() {
        assert_eq!(detect(&[], false), EnvironmentKind::Desktop);
        assert_eq!(detect(&[("RENDER_SERVICE_ID", "srv-1")], false), EnvironmentKind::Cloud);
        assert_eq!(detect(&[("DYNO", "web.1"), ("CI", "true")], false), EnvironmentKind::Cloud);
        assert_eq!(detect(&[("CI", "true")], false), EnvironmentKind::CiCd);
        assert_eq!(detect(&[("CI", "false")], false), EnvironmentKind::Desktop);
        assert_eq!(detect(&[], true), EnvironmentKind::Container);
        assert_eq!(detect(&[("KUBERNETES_SERVICE_HOST", "10.0.0.1")], false), EnvironmentKind::Container);
    }

    #[test]
    fn an_override_wins() {
        let kind = detect_environment(Some(EnvironmentKind::Desktop), |_| Some("1".into()), true);
        assert_eq!(kind, EnvironmentKind::Desktop);
    }
}
