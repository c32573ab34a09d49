//! Following a pipeline execution the tool started: a progress line per
//! stage and action transition, the failed action's message and a console
//! link on failure, and at the timeout a clear note that the execution is
//! left running.

use std::collections::BTreeMap;

use super::*;
use crate::aws::{AwsClients, Execution, StageState};

/// The CodePipeline console page of one execution.
pub fn execution_url(region: &str, pipeline: &str, execution_id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{pipeline}/executions/{execution_id}/timeline?region={region}"
    )
}

/// The first failed action of the execution's stages, as
/// `Stage/Action: message`.
pub(crate) fn failed_action(stages: &[StageState], id: &str) -> Option<String> {
    stages
        .iter()
        .filter(|s| s.execution_id.as_deref() == Some(id))
        .flat_map(|s| s.actions.iter().map(move |a| (s, a)))
        .find(|(_, a)| a.status.as_deref() == Some("Failed"))
        .map(|(s, a)| {
            let why = a
                .error
                .clone()
                .or_else(|| a.summary.clone())
                .unwrap_or_else(|| "no message".into());
            let link = a
                .external_url
                .as_deref()
                .map(|u| format!(" (details: {u})"))
                .unwrap_or_default();
            format!("{}/{}: {why}{link}", s.name, a.name)
        })
}

/// Progress lines for what changed since `seen` (stage and action
/// statuses of this execution), updating `seen`.
pub(crate) fn transitions(
    stages: &[StageState],
    id: &str,
    seen: &mut BTreeMap<String, String>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for s in stages
        .iter()
        .filter(|s| s.execution_id.as_deref() == Some(id))
    {
        let status = s.status.clone().unwrap_or_default();
        if seen.get(&s.name) != Some(&status) {
            lines.push(format!("stage {}: {status}", s.name));
            seen.insert(s.name.clone(), status);
        }
        for a in &s.actions {
            let Some(status) = a.status.clone() else {
                continue;
            };
            let key = format!("{}/{}", s.name, a.name);
            if seen.get(&key) != Some(&status) {
                let detail = match (&a.error, &a.summary) {
                    (Some(e), _) if status == "Failed" => format!(": {e}"),
                    (_, Some(sum)) if !sum.is_empty() => format!(" ({sum})"),
                    _ => String::new(),
                };
                lines.push(format!("  action {key}: {status}{detail}"));
                seen.insert(key, status);
            }
        }
    }
    lines
}

impl Executor {
    /// Waits for execution `id` of `pipeline` to end, printing each stage
    /// and action transition. Success is `Ok` with a summary; a failed,
    /// stopped or superseded execution, and the timeout (the execution is
    /// left running), are failures naming the console page.
    pub(super) async fn wait_execution(
        &self,
        clients: &AwsClients,
        env: &str,
        region: &str,
        pipeline: &str,
        id: &str,
    ) -> Result<String, Failure> {
        let deadline = Instant::now() + self.options.timeout;
        let url = execution_url(region, pipeline, id);
        let mut seen = BTreeMap::new();
        self.say(
            env,
            format!("waiting for pipeline `{pipeline}` execution {id}: {url}"),
        );
        loop {
            let ex: Execution = clients.codepipeline.get_execution(pipeline, id).await?;
            let stages = clients
                .codepipeline
                .stage_states(pipeline)
                .await
                .unwrap_or_default();
            for line in transitions(&stages, id, &mut seen) {
                self.say(env, line);
            }
            if !ex.is_running() {
                return match ex.status.as_str() {
                    "Succeeded" => Ok(format!("pipeline `{pipeline}` execution {id} succeeded")),
                    status => {
                        let why = failed_action(&stages, id)
                            .map(|a| format!(" at {a}"))
                            .or_else(|| ex.status_summary.as_ref().map(|s| format!(": {s}")))
                            .unwrap_or_default();
                        let what = match status {
                            "Superseded" => {
                                "was superseded by a newer execution (this commit was not deployed)"
                                    .to_string()
                            }
                            other => format!("ended {other}"),
                        };
                        Err(fail(format!(
                            "pipeline `{pipeline}` execution {id} {what}{why}; see {url}"
                        )))
                    }
                };
            }
            if Instant::now() >= deadline {
                return Err(fail(format!(
                    "pipeline `{pipeline}` execution {id} is still {} after {}s: stopped waiting, the execution is left running in AWS; follow it at {url}, or raise --timeout",
                    ex.status,
                    self.options.timeout.as_secs()
                )));
            }
            if self.pause().await {
                return Err(interrupted(
                    format!("interrupted while pipeline `{pipeline}` execution {id} was {}: it goes on in AWS; follow it at {url}", ex.status),
                    None,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
