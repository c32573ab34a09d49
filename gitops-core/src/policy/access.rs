//! IAM Access Analyzer checks of the policies [`iam`](super::iam) extracts:
//! ValidatePolicy for every policy, CheckNoNewAccess against the policy at
//! the base revision, and CheckAccessNotGranted for `policies.deny-actions`.
//!
//! Turning answers into [`Problem`]s is pure ([`finding_problem`],
//! [`new_access_problem`], [`denied_access_problem`]); [`run`] makes the
//! calls, a few at a time.

use std::sync::Arc;

use crate::aws::{AccessAnalyzer, AccessCheck, AwsError, FindingType, PolicyFinding, PolicyKind};
use crate::fanout::FanOut;
use crate::problem::{Problem, ProblemSource, Severity};

use super::iam::PolicyDoc;

/// How many policies are checked at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Rule id of a CheckNoNewAccess failure.
pub const RULE_NO_NEW_ACCESS: &str = "CheckNoNewAccess";
/// Rule id of a CheckAccessNotGranted failure.
pub const RULE_ACCESS_NOT_GRANTED: &str = "CheckAccessNotGranted";

/// What the Access Analyzer checks do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessOptions {
    /// Findings of this type or worse are errors; the others are warnings.
    pub fail_on: FindingType,
    /// Actions no policy may grant (`policies.deny-actions`).
    pub deny_actions: Vec<String>,
    /// How many policies are checked at once (at least 1).
    pub concurrency: usize,
}

impl Default for AccessOptions {
    fn default() -> Self {
        Self {
            fail_on: FindingType::SecurityWarning,
            deny_actions: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

impl AccessOptions {
    /// Options with threshold `fail_on` and the actions to deny.
    pub fn new(fail_on: FindingType, deny_actions: Vec<String>) -> Self {
        Self {
            fail_on,
            deny_actions,
            ..Self::default()
        }
    }
}

/// What the checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessReport {
    /// Findings and failed access checks, in the order of the policies.
    pub problems: Vec<Problem>,
    /// What was not checked, and why (a policy new at head has no base).
    pub notes: Vec<String>,
}

/// A ValidatePolicy finding on `policy` as a problem at the line the
/// finding points to: an error when it is `fail_on` or worse, otherwise a
/// warning. The message carries the AWS severity word; the rule is the
/// issue code.
pub fn finding_problem(
    policy: &PolicyDoc,
    finding: &PolicyFinding,
    fail_on: FindingType,
) -> Problem {
    let severity = if finding.finding_type >= fail_on {
        Severity::Error
    } else {
        Severity::Warning
    };
    let pos = finding
        .locations
        .first()
        .and_then(|path| policy.line_of(path))
        .or(policy.line);
    let link = if finding.learn_more_link.is_empty() {
        String::new()
    } else {
        format!(" (see {})", finding.learn_more_link)
    };
    let mut p = Problem::error(
        &policy.file,
        format!(
            "Access Analyzer {} {} in IAM {} {}: {}{link}",
            finding.finding_type,
            finding.issue_code,
            policy.kind.label(),
            policy.name(),
            finding.details.trim(),
        ),
    )
    .at(pos)
    .with_source(ProblemSource::AccessAnalyzer)
    .with_rule(&finding.issue_code);
    p.severity = severity;
    p
}

fn reasons(check: &AccessCheck) -> String {
    let mut s = String::new();
    if !check.message.trim().is_empty() {
        s.push_str(": ");
        s.push_str(check.message.trim());
    }
    if !check.reasons.is_empty() {
        s.push_str(&format!(" ({})", check.reasons.join("; ")));
    }
    s
}

/// A failed CheckNoNewAccess as an error naming the policy, or `None` when
/// it passed.
pub fn new_access_problem(policy: &PolicyDoc, check: &AccessCheck) -> Option<Problem> {
    (!check.passed).then(|| {
        Problem::error(
            &policy.file,
            format!(
                "IAM {} {} grants new access compared with the base revision{}",
                policy.kind.label(),
                policy.name(),
                reasons(check)
            ),
        )
        .at(policy.line)
        .with_source(ProblemSource::AccessAnalyzer)
        .with_rule(RULE_NO_NEW_ACCESS)
    })
}

/// A failed CheckAccessNotGranted as an error naming the policy and the
/// actions, or `None` when it passed.
pub fn denied_access_problem(
    policy: &PolicyDoc,
    actions: &[String],
    check: &AccessCheck,
) -> Option<Problem> {
    (!check.passed).then(|| {
        Problem::error(
            &policy.file,
            format!(
                "IAM {} {} grants an action of `policies.deny-actions` ({}){}",
                policy.kind.label(),
                policy.name(),
                actions.join(", "),
                reasons(check)
            ),
        )
        .at(policy.line)
        .with_source(ProblemSource::AccessAnalyzer)
        .with_rule(RULE_ACCESS_NOT_GRANTED)
    })
}

/// The policy of `base` that `policy` is a new version of: same file,
/// logical id and property path.
pub fn base_version<'a>(policy: &PolicyDoc, base: &'a [PolicyDoc]) -> Option<&'a PolicyDoc> {
    base.iter().find(|b| b.key() == policy.key())
}

/// Runs the Access Analyzer checks on every policy, `options.concurrency`
/// at a time: ValidatePolicy; CheckNoNewAccess against the policy's version
/// in `base` when `base` is given (a policy new at head is noted and
/// skipped; an unchanged one needs no call); CheckAccessNotGranted for
/// `options.deny_actions` on identity and resource policies.
///
/// A failed call (after the SDK's retries) ends the run with its error.
pub async fn run(
    analyzer: Arc<dyn AccessAnalyzer>,
    policies: &[PolicyDoc],
    base: Option<&[PolicyDoc]>,
    options: &AccessOptions,
) -> Result<AccessReport, AwsError> {
    let mut report = AccessReport::default();
    let mut items = Vec::new();
    for policy in policies {
        let existing = match base {
            None => None,
            Some(base) => match base_version(policy, base) {
                Some(b) => Some(b.text()),
                None => {
                    report.notes.push(format!(
                        "CheckNoNewAccess skipped for IAM {} {} in {}: it is new (not at the base revision)",
                        policy.kind.label(),
                        policy.name(),
                        policy.file
                    ));
                    None
                }
            },
        };
        items.push((policy.clone(), existing));
    }
    // One analyzer (one account and region): one key.
    let results = FanOut::new(options.concurrency)
        .run(
            items,
            |_| (),
            |(policy, existing)| {
                let analyzer = Arc::clone(&analyzer);
                let options = options.clone();
                async move { check_one(analyzer.as_ref(), &policy, existing, &options).await }
            },
        )
        .await;
    for r in results {
        match r {
            Ok(Ok(problems)) => report.problems.extend(problems),
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                return Err(AwsError::new(
                    "AccessAnalyzer",
                    "ValidatePolicy",
                    crate::aws::AwsErrorKind::Other,
                    format!("a policy check stopped: {e}"),
                ))
            }
        }
    }
    Ok(report)
}

/// Every check of one policy.
async fn check_one(
    analyzer: &dyn AccessAnalyzer,
    policy: &PolicyDoc,
    existing: Option<String>,
    options: &AccessOptions,
) -> Result<Vec<Problem>, AwsError> {
    let text = policy.text();
    let mut problems: Vec<Problem> = analyzer
        .validate_policy(&text, &policy.kind)
        .await?
        .iter()
        .map(|f| finding_problem(policy, f, options.fail_on))
        .collect();
    if let Some(existing) = existing {
        // An unchanged policy cannot grant new access.
        if existing != text {
            let check = analyzer
                .check_no_new_access(&text, &existing, &policy.kind)
                .await?;
            problems.extend(new_access_problem(policy, &check));
        }
    }
    if !options.deny_actions.is_empty() && policy.kind != PolicyKind::RoleTrust {
        let check = analyzer
            .check_access_not_granted(&text, &options.deny_actions, &policy.kind)
            .await?;
        problems.extend(denied_access_problem(policy, &options.deny_actions, &check));
    }
    Ok(problems)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::aws::{AwsResult, BoxFuture, PolicyPathStep};
    use crate::policy::iam::extract;
    use crate::Template;

    /// A scripted Access Analyzer that records its calls.
    #[derive(Debug, Default)]
    pub(crate) struct Scripted {
        /// Findings ValidatePolicy returns for documents containing the key.
        pub findings: Vec<(String, PolicyFinding)>,
        /// CheckNoNewAccess fails when the new document contains this.
        pub new_access_if: Option<String>,
        /// CheckAccessNotGranted fails when the document contains this.
        pub granted_if: Option<String>,
        /// Every call: (operation, documents, kind label).
        pub calls: Mutex<Vec<(String, Vec<String>, String)>>,
        /// Fail every call with this error.
        pub error: Option<AwsError>,
    }

    impl Scripted {
        fn record(&self, op: &str, docs: Vec<String>, kind: &PolicyKind) {
            self.calls
                .lock()
                .unwrap()
                .push((op.into(), docs, kind.label().into()));
        }

        pub fn calls(&self, op: &str) -> Vec<Vec<String>> {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|c| c.0 == op)
                .map(|c| c.1.clone())
                .collect()
        }
    }

    impl AccessAnalyzer for Scripted {
        fn validate_policy<'a>(
            &'a self,
            document: &'a str,
            kind: &'a PolicyKind,
        ) -> BoxFuture<'a, AwsResult<Vec<PolicyFinding>>> {
            self.record("ValidatePolicy", vec![document.into()], kind);
            let out = match &self.error {
                Some(e) => Err(e.clone()),
                None => Ok(self
                    .findings
                    .iter()
                    .filter(|(k, _)| document.contains(k.as_str()))
                    .map(|(_, f)| f.clone())
                    .collect()),
            };
            Box::pin(async move { out })
        }

        fn check_no_new_access<'a>(
            &'a self,
            new_document: &'a str,
            existing_document: &'a str,
            kind: &'a PolicyKind,
        ) -> BoxFuture<'a, AwsResult<AccessCheck>> {
            self.record(
                "CheckNoNewAccess",
                vec![new_document.into(), existing_document.into()],
                kind,
            );
            let fail = self
                .new_access_if
                .as_ref()
                .is_some_and(|k| new_document.contains(k.as_str()));
            Box::pin(async move {
                Ok(AccessCheck {
                    passed: !fail,
                    message: if fail {
                        "The modified permissions grant new access compared to your existing policy.".into()
                    } else {
                        String::new()
                    },
                    reasons: if fail {
                        vec!["statement 0: New access in the statement with index: 0.".into()]
                    } else {
                        Vec::new()
                    },
                })
            })
        }

        fn check_access_not_granted<'a>(
            &'a self,
            document: &'a str,
            actions: &'a [String],
            kind: &'a PolicyKind,
        ) -> BoxFuture<'a, AwsResult<AccessCheck>> {
            let mut docs = vec![document.to_string()];
            docs.extend(actions.iter().cloned());
            self.record("CheckAccessNotGranted", docs, kind);
            let fail = self
                .granted_if
                .as_ref()
                .is_some_and(|k| document.contains(k.as_str()));
            Box::pin(async move {
                Ok(AccessCheck {
                    passed: !fail,
                    message: if fail {
                        "The policy document grants access to perform one or more of the listed actions.".into()
                    } else {
                        String::new()
                    },
                    reasons: Vec::new(),
                })
            })
        }
    }

    pub(crate) fn finding(t: FindingType, code: &str, path: Vec<PolicyPathStep>) -> PolicyFinding {
        PolicyFinding {
            finding_type: t,
            issue_code: code.into(),
            details: format!("details of {code}"),
            learn_more_link: format!("https://docs.aws.amazon.com/{code}"),
            locations: vec![path],
        }
    }

    const TEMPLATE: &str = r#"Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: { Service: lambda.amazonaws.com }
            Action: sts:AssumeRole
      Policies:
        - PolicyName: all
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: "*"
                Resource: "*"
"#;

    fn policies(text: &str) -> Vec<PolicyDoc> {
        extract(&Template::parse("common/app.yaml", text).unwrap()).0
    }

    fn star_findings() -> Vec<(String, PolicyFinding)> {
        use PolicyPathStep::{Index, Key};
        let path = vec![Key("Statement".into()), Index(0), Key("Action".into())];
        vec![
            (
                "\"Action\":\"*\"".into(),
                finding(
                    FindingType::SecurityWarning,
                    "PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE",
                    path.clone(),
                ),
            ),
            (
                "\"Action\":\"*\"".into(),
                finding(
                    FindingType::Suggestion,
                    "EMPTY_SID_VALUE",
                    vec![Key("Statement".into()), Index(0)],
                ),
            ),
        ]
    }

    #[tokio::test]
    async fn findings_map_to_lines_and_thresholds_decide_severity() {
        let ps = policies(TEMPLATE);
        let aa = Arc::new(Scripted {
            findings: star_findings(),
            ..Scripted::default()
        });
        let report = run(aa.clone(), &ps, None, &AccessOptions::default())
            .await
            .unwrap();
        let shown: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "common/app.yaml:16:17: error: Access Analyzer SECURITY_WARNING PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE in IAM identity policy `Role` Properties.Policies[0].PolicyDocument: details of PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE (see https://docs.aws.amazon.com/PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE)",
                "common/app.yaml:15:17: warning: Access Analyzer SUGGESTION EMPTY_SID_VALUE in IAM identity policy `Role` Properties.Policies[0].PolicyDocument: details of EMPTY_SID_VALUE (see https://docs.aws.amazon.com/EMPTY_SID_VALUE)",
            ]
        );
        assert_eq!(
            report.problems[0].rule.as_deref(),
            Some("PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE")
        );
        assert!(report
            .problems
            .iter()
            .all(|p| p.source == ProblemSource::AccessAnalyzer));
        // Both policies were validated, with their kinds.
        let kinds: BTreeMap<String, usize> =
            aa.calls
                .lock()
                .unwrap()
                .iter()
                .fold(BTreeMap::new(), |mut m, c| {
                    *m.entry(format!("{} {}", c.0, c.2)).or_default() += 1;
                    m
                });
        assert_eq!(
            kinds,
            [
                ("ValidatePolicy identity policy".to_string(), 1),
                ("ValidatePolicy role trust policy".to_string(), 1)
            ]
            .into()
        );
    }

    #[test]
    fn thresholds() {
        let p = &policies(TEMPLATE)[1];
        let sev = |t: FindingType, fail_on: FindingType| {
            finding_problem(p, &finding(t, "X", vec![]), fail_on).severity
        };
        use FindingType::*;
        for fail_on in FindingType::ALL {
            for t in FindingType::ALL {
                let expected = if t >= fail_on {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                assert_eq!(sev(t, fail_on), expected, "{t} with --fail-on {fail_on}");
            }
        }
        assert_eq!(sev(Warning, SecurityWarning), Severity::Warning);
        assert_eq!(sev(SecurityWarning, SecurityWarning), Severity::Error);
        assert_eq!(sev(Suggestion, Suggestion), Severity::Error);
        assert_eq!(sev(Error, Error), Severity::Error);
        assert_eq!(sev(SecurityWarning, Error), Severity::Warning);
        // A finding without a location sits at the policy's line.
        assert_eq!(
            finding_problem(p, &finding(Error, "X", vec![]), Error).line,
            Some(12)
        );
        assert_eq!(
            FindingType::parse("security-warning"),
            Some(SecurityWarning)
        );
        assert_eq!(FindingType::parse("SUGGESTION"), Some(Suggestion));
        assert_eq!(FindingType::parse("fatal"), None);
    }

    #[tokio::test]
    async fn check_no_new_access_uses_the_base_revision_policy() {
        let base_text = TEMPLATE
            .replace("Action: \"*\"", "Action: s3:GetObject")
            .replace(
                "Principal: { Service: lambda.amazonaws.com }",
                "Principal: { Service: ecs-tasks.amazonaws.com }",
            );
        let base = policies(&base_text);
        // Head adds a new managed policy with no base version.
        let head_text = format!(
            "{TEMPLATE}  Extra:\n    Type: AWS::IAM::ManagedPolicy\n    Properties:\n      PolicyDocument:\n        Statement: [{{Effect: Allow, Action: s3:ListBucket, Resource: '*'}}]\n"
        );
        let head = policies(&head_text);
        assert_eq!(head.len(), 3);
        let aa = Arc::new(Scripted {
            new_access_if: Some("\"Action\":\"*\"".into()),
            ..Scripted::default()
        });
        let report = run(aa.clone(), &head, Some(&base), &AccessOptions::default())
            .await
            .unwrap();
        let calls = aa.calls("CheckNoNewAccess");
        assert_eq!(calls.len(), 2, "{calls:?}");
        let by_new: BTreeMap<&str, &str> = calls
            .iter()
            .map(|c| (c[0].as_str(), c[1].as_str()))
            .collect();
        // Each call pairs the head policy with its base version.
        for (h, b) in [(&head[1], &base[0]), (&head[2], &base[1])] {
            assert_eq!(h.key(), b.key());
            assert_eq!(by_new.get(h.text().as_str()), Some(&b.text().as_str()));
        }
        assert_eq!(report.problems.len(), 1);
        let p = &report.problems[0];
        assert_eq!(p.rule.as_deref(), Some(RULE_NO_NEW_ACCESS));
        assert_eq!(p.line, Some(12));
        assert!(p.is_error());
        assert!(
            p.message.starts_with("IAM identity policy `Role` Properties.Policies[0].PolicyDocument grants new access compared with the base revision: The modified permissions"),
            "{}",
            p.message
        );
        assert_eq!(
            report.notes,
            vec!["CheckNoNewAccess skipped for IAM identity policy `Extra` Properties.PolicyDocument in common/app.yaml: it is new (not at the base revision)"]
        );

        // An unchanged policy needs no call.
        let aa = Arc::new(Scripted::default());
        let report = run(aa.clone(), &base, Some(&base), &AccessOptions::default())
            .await
            .unwrap();
        assert!(aa.calls("CheckNoNewAccess").is_empty());
        assert!(report.problems.is_empty());
    }

    #[tokio::test]
    async fn deny_actions_go_through_check_access_not_granted() {
        let ps = policies(TEMPLATE);
        let aa = Arc::new(Scripted {
            granted_if: Some("\"Action\":\"*\"".into()),
            ..Scripted::default()
        });
        let options = AccessOptions::new(
            FindingType::Error,
            vec!["iam:PassRole".into(), "s3:DeleteBucket".into()],
        );
        let report = run(aa.clone(), &ps, None, &options).await.unwrap();
        // Not for the trust policy.
        let calls = aa.calls("CheckAccessNotGranted");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0][1..], ["iam:PassRole", "s3:DeleteBucket"]);
        assert_eq!(report.problems.len(), 1);
        assert_eq!(
            report.problems[0].rule.as_deref(),
            Some(RULE_ACCESS_NOT_GRANTED)
        );
        assert!(report.problems[0].message.contains(
            "grants an action of `policies.deny-actions` (iam:PassRole, s3:DeleteBucket)"
        ));
    }

    #[tokio::test]
    async fn a_failed_call_ends_the_run() {
        let aa = Arc::new(Scripted {
            error: Some(AwsError::from_service(
                "AccessAnalyzer",
                "ValidatePolicy",
                Some("AccessDeniedException".into()),
                "not allowed",
            )),
            ..Scripted::default()
        });
        let err = run(aa, &policies(TEMPLATE), None, &AccessOptions::default())
            .await
            .unwrap_err();
        assert!(err.is_access_denied());
    }
}
