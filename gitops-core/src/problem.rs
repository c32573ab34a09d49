//! Problems found in a GitOps repository: the unit of every validation report.

use serde::Serialize;

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// The repository cannot be used as it is.
    Error,
    /// Worth a look; does not fail validation.
    Warning,
}

/// Which check found a [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProblemSource {
    /// `gitops.yaml` or an environment file.
    Config,
    /// A CloudFormation template.
    Template,
    /// A cfn-guard rule (`policies.guard`).
    Guard,
    /// IAM Access Analyzer, or the IAM policy checks that prepare its calls.
    AccessAnalyzer,
}

/// One finding, located at a file and, where known, a line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// Repository-relative path of the file the problem is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong, and where possible what to do about it.
    pub message: String,
    /// The check that found it.
    pub source: ProblemSource,
    /// The rule or finding behind it (a guard rule name, an Access Analyzer
    /// issue code), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Problem {
    /// A new error in `file` without a position.
    pub fn error(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
            source: ProblemSource::Config,
            rule: None,
        }
    }

    /// A new warning in `file` without a position.
    pub fn warning(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, message)
        }
    }

    /// Sets the position (1-based line and column).
    pub fn at(mut self, pos: Option<(usize, usize)>) -> Self {
        if let Some((line, column)) = pos {
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }

    /// Sets the check that found the problem.
    pub fn with_source(mut self, source: ProblemSource) -> Self {
        self.source = source;
        self
    }

    /// Sets the rule or finding id behind the problem.
    pub fn with_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// Whether this problem fails validation.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Problem {
    /// `file:line:col: severity: message`, the format editors and CI logs link.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {sev}: {}", self.message)
    }
}

/// "did you mean `x`?" for a misspelt `word` among `candidates`.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}
