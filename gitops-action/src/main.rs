//! `gitops`: GitOps for AWS CloudFormation without Kubernetes.
//!
//! Each subcommand gathers state, computes what to do as data, then prints or
//! executes it. All logic that can be pure lives in `gitops-core`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

// Every byte the binary prints goes through `output::write_out` and
// `output::write_err`: these four macros shadow the standard ones in every
// module below. Under GitHub Actions that is where a line that would begin a
// workflow command is neutralised, and where known secrets are redacted; a
// workflow command we mean is printed with `output::workflow_command`.
macro_rules! print {
    ($($arg:tt)*) => { $crate::output::write_out(&format!($($arg)*)) };
}
macro_rules! println {
    () => { $crate::output::write_out("\n") };
    ($($arg:tt)*) => { $crate::output::write_out(&format!("{}\n", format_args!($($arg)*))) };
}
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::output::write_err(&format!($($arg)*)) };
}
macro_rules! eprintln {
    () => { $crate::output::write_err("\n") };
    ($($arg:tt)*) => { $crate::output::write_err(&format!("{}\n", format_args!($($arg)*))) };
}

mod aws;
mod commands;
mod github;
mod github_api;
mod interrupt;
mod output;

/// GitOps for AWS CloudFormation, without Kubernetes.
///
/// A GitOps repository holds shared CloudFormation templates and one folder
/// per environment (`environments/<name>/environment.yaml`) whose parameters,
/// the app version included, feed those templates. `gitops.yaml` at its root
/// says where things are.
///
/// Start with `gitops validate` and `gitops envs` in your repository.
///
/// Exit status: each command's --help lists its own; a usage error exits
/// with 2, or with 1 for detect, plan, status and drift (where 2 means
/// changes or drift).
#[derive(Debug, Parser)]
#[command(
    verbatim_doc_comment,
    name = "gitops",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// The GitOps repository: a folder at or below the one holding gitops.yaml.
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    repo: PathBuf,
    /// Output format. `markdown` is for reports such as plans and summaries;
    /// `html` (status and drift) is the status board, one self-contained page.
    #[arg(long, global = true, value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// When to colour text output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people at a terminal.
    Text,
    /// For programs and workflow steps.
    Json,
    /// For pull-request comments and step summaries.
    Markdown,
}

/// `--format` as given: the output formats plus `html`, which only the
/// commands that draw the status board accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// For people at a terminal.
    Text,
    /// For programs and workflow steps.
    Json,
    /// For pull-request comments and step summaries.
    Markdown,
    /// The status board: one self-contained HTML page (status and drift).
    Html,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when standard output is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check gitops.yaml, every environment file and the templates they use.
    ///
    /// Reports every problem in one run as `file:line:col: error: message`.
    /// In GitHub Actions (GITHUB_ACTIONS=true) it also prints `::error`
    /// annotations, so problems show on the right lines of the pull request.
    ///
    /// Policy gates (`policies:` in gitops.yaml): every template in use is
    /// evaluated against the cfn-guard rules of `policies.guard`, offline.
    /// The IAM policies inside the templates (and the JSON files of
    /// `policies.iam`) go through IAM Access Analyzer ValidatePolicy, and
    /// through CheckAccessNotGranted for `policies.deny-actions`; with
    /// --check-no-new-access, CheckNoNewAccess compares each one with its
    /// version at the base revision. The Access Analyzer checks run with
    /// --aws, or when AWS credentials are present and --no-aws is not given;
    /// otherwise validate says which checks were skipped.
    ///
    /// Exit status: 0 valid, 1 problems found, 2 usage or internal error.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops validate\n  gitops validate --repo examples/basic --format json\n  gitops validate --no-aws\n  gitops validate --aws --fail-on warning\n  gitops validate --aws --check-no-new-access --base origin/main"
    )]
    Validate(commands::validate::Args),
    /// List the environments, resolved: defaults merged under each file.
    ///
    /// With --rev, the repository is read at that git revision without a
    /// checkout, so an environment deleted since then is still listed.
    ///
    /// Exit status: 0 success, 2 usage or internal error (no gitops.yaml, an
    /// unusable gitops.yaml, an unknown revision).
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops envs\n  gitops envs --rev HEAD~1 --format json"
    )]
    Envs(commands::envs::Args),
    /// Show which AWS account, identity and region the credentials resolve to.
    ///
    /// Credentials come from the standard chain: environment variables, a
    /// profile (AWS_PROFILE), SSO, or web identity as set up by
    /// aws-actions/configure-aws-credentials. AWS_ENDPOINT_URL or
    /// --endpoint-url points every call at another endpoint, such as a local
    /// emulator.
    ///
    /// Exit status: 0 success, 2 no usable credentials, an AWS error, or a
    /// usage error.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops whoami\n  AWS_PROFILE=prod gitops whoami --format json"
    )]
    Whoami(commands::whoami::Args),
    /// Work out which environments changed between two commits.
    ///
    /// Compares the trees of --base and --head: an environment is created
    /// or deleted when its folder appears or disappears (a renamed folder is
    /// both), and updated when a file in its folder, the template it uses, a
    /// path matching a `shared` glob or its resolved configuration changed.
    /// Paths matching `ignore` never count, and a gitops.yaml edit counts only
    /// where it changes a resolved environment. Nothing contacts AWS.
    ///
    /// With --github, base and head come from the GitHub event: a push
    /// compares `before` with `after` (a new branch: its merge base with the
    /// default branch; a forced push: the merge base of the two), a pull
    /// request its merge base with the head, and workflow_dispatch and
    /// schedule count every environment as updated. Commits a shallow
    /// checkout lacks are fetched from origin. With --github, or whenever
    /// GITHUB_OUTPUT is set, it writes the step outputs has-changes,
    /// created, updated, deleted (JSON arrays), matrix, base and head, and
    /// a table to the job summary.
    ///
    /// Exit status: 0 success (with --exit-code: no changes), 2 changes
    /// (with --exit-code only), 1 error.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops detect --base origin/main --head HEAD\n  gitops detect --base HEAD~1 --format json\n  gitops detect --github --exit-code\n\nIn a workflow:\n  - id: detect\n    run: gitops detect --github\n  # then: strategy.matrix: ${{ fromJSON(steps.detect.outputs.matrix) }}\n  #       if: steps.detect.outputs.has-changes == 'true'"
    )]
    Detect(commands::detect::Args),
    /// Turn changes into AWS actions: create, update, start or delete.
    ///
    /// For each environment that changed (from --base/--head, --github,
    /// --environment or --from-detect):
    ///
    /// * pipeline mode (`pipeline:` in gitops.yaml): a new environment gets
    ///   its pipeline stack, created from `pipeline.template` (a new pipeline
    ///   runs once by itself); an existing one gets its pipeline stack
    ///   updated when needed, then its pipeline started, pinned to the commit;
    /// * direct mode: the environment stack is created or updated through a
    ///   change set, with its events streamed as it goes;
    /// * a removed environment's stacks are deleted, only with
    ///   --allow-delete and never when it was `protected`.
    ///
    /// The tool only touches stacks tagged `gitops:managed-by=<id>` (or
    /// --adopt), checks the account when an environment pins one, never
    /// leaves a change set behind, and treats an empty change set as success.
    /// Every decision is made before anything changes: --dry-run prints them.
    ///
    /// Exit status: 0 success or nothing to do, 1 when any environment
    /// failed or was refused.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops deploy --base HEAD~1 --dry-run\n  gitops deploy --github --allow-delete\n  gitops deploy --environment staging --no-wait\n  gitops deploy --from-detect detect.json --environment prod"
    )]
    Deploy(commands::deploy::Args),
    /// One row per environment: git's version and the deployed one, sync and health.
    ///
    /// For each environment, from the repository at --rev (default HEAD:
    /// git, not the working tree, is the source of truth): the promoted keys
    /// (`promotion.keys`, such as parameters.AppVersion) in git and on the
    /// deployed stack, the `gitops:commit` it was deployed from, the stack's
    /// status, the pipeline's last execution (pipeline mode), and
    ///
    /// * sync: Synced when the stack's parameters and tags are what git
    ///   says, OutOfSync when not (or the stack is missing), Unknown when an
    ///   error prevented the check (templates are compared by `gitops drift`);
    ///
    /// * health: Progressing (a stack operation or pipeline execution is
    ///   running), Missing (no stack), Degraded (a *_FAILED or *ROLLBACK*
    ///   stack, or a Failed or Stopped pipeline execution), Healthy (a
    ///   *_COMPLETE stack and a Succeeded pipeline execution or none),
    ///   otherwise Unknown; the first that applies wins.
    ///
    /// Fast: environments are queried concurrently, their stacks read with
    /// one paginated DescribeStacks per region when there are several, and
    /// neither templates nor drift detection are read (see `gitops drift`).
    /// Nothing is changed.
    ///
    /// Exit status: 0 (whatever the rows say), 1 error.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops status\n  gitops status --format json\n  gitops status --environment prod --rev origin/main"
    )]
    Status(commands::status::Args),
    /// Compare AWS with git in depth; optionally report, notify and self-heal.
    ///
    /// Runs `status` plus, per environment: the template (normalised, so
    /// JSON or YAML and key order do not matter), parameters, tags and
    /// existence of its stacks against git; CloudFormation drift detection
    /// (DetectStackDrift, polled with backoff up to --drift-timeout, then
    /// each resource's property differences; NOT_CHECKED resources are
    /// listed as such), less the `drift.ignore` entries of gitops.yaml. Stacks
    /// tagged gitops:managed-by=<id> that no environment declares are
    /// reported as orphans. One environment's error never stops the others:
    /// it is Unknown, with the error.
    ///
    /// --skip-resource-drift leaves CloudFormation drift detection out (fast,
    /// and for emulators without it). --open-issues keeps one GitHub issue
    /// per drifted environment; --notify posts to a Slack or Teams webhook;
    /// --remediate redeploys environments with `auto-remediate: true`. With
    /// GITHUB_OUTPUT set it writes the step outputs in-sync (true/false) and
    /// drifted (JSON array), and a table to the job summary.
    ///
    /// Exit status (as `terraform plan -detailed-exitcode`): 0 all in sync,
    /// 2 drift (an OutOfSync environment or an orphan stack), 1 error (an
    /// Unknown environment, or a failed issue, notification or remediation).
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops drift\n  gitops drift --skip-resource-drift --format json\n  gitops drift --open-issues --notify \"$SLACK_WEBHOOK_URL\"\n  gitops drift --remediate --environment staging\n\nIn a scheduled workflow:\n  - id: drift\n    run: gitops drift --open-issues\n    continue-on-error: true\n  # then: if: steps.drift.outputs.in-sync == 'false'"
    )]
    Drift(commands::drift::Args),
    /// Show what `gitops deploy` would do, for review before it does it.
    ///
    /// Takes the same selection as deploy (--base/--head, --github,
    /// --environment). For each affected environment it shows:
    ///
    /// * the action the deploy would take: create-pipeline,
    ///   update-pipeline-stack, start-pipeline, create-stack, update-stack,
    ///   delete-stack, refuse (protected, foreign stack, account mismatch,
    ///   deletion not allowed) or nothing;
    /// * the parameter and tag changes from base to head, old -> new
    ///   (NoEcho parameters show as ****);
    /// * the unified diff of the environment file and of each template it
    ///   uses that changed;
    /// * with AWS credentials, a change-set preview: each stack to create or
    ///   update gets a change set that is read (Add/Modify/Remove, logical
    ///   id, type, replacement) and then always deleted, even on errors or
    ///   Ctrl-C. Nothing is executed.
    ///
    /// --no-aws makes no AWS call at all: the actions are then a git-level
    /// guess that assumes AWS matches the base revision. Use it for pull
    /// requests from forks and jobs without credentials. Without it, an
    /// environment whose AWS calls fail gets that guess plus a note.
    ///
    /// The markdown (--format markdown; always written to the step summary
    /// in GitHub Actions) starts with counts per action and the
    /// replacements and deletions, then one collapsible section per
    /// environment. With --comment, or with --github on a pull_request
    /// event, it becomes the pull request's plan comment: one per pull
    /// request, found by a hidden marker and edited in place, through the
    /// GitHub REST API (GITHUB_API_URL, GITHUB_TOKEN, GITHUB_REPOSITORY).
    /// A read-only token (fork pull requests) gets a notice instead of a
    /// failure; a plan over 65,536 characters is cut at an environment.
    ///
    /// Exit status: 0 success (with --exit-code: no changes), 2 changes
    /// (with --exit-code only), 1 error. An interrupted run exits 130 after
    /// deleting its change sets.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops plan --base HEAD~1\n  gitops plan --base origin/main --no-aws --format markdown\n  gitops plan --github --exit-code            # on a pull request: also the PR comment\n  gitops plan --environment prod --format json\n  gitops plan --base HEAD~1 --comment --pr 42 --no-aws"
    )]
    Plan(commands::plan::Args),
    /// Copy promoted values (`promotion.keys`) from one environment into the next.
    ///
    /// Reads the values of `promotion.keys` (such as parameters.AppVersion)
    /// from --from's resolved configuration and sets them in --to's
    /// environment file, edited in place: comments, key order, quoting and
    /// indentation stay, and only the lines of the changed values differ. A
    /// key the file lacks is added to the right map, in that map's style.
    ///
    /// --to defaults to `next`, the environment after --from in
    /// `promotion.order`; any other target is refused unless --force is given
    /// (and then recorded in the output, the commit message and the PR).
    ///
    /// Verification gate: when AWS credentials are available (or with
    /// --verify), --from's stack must exist, be in a *_COMPLETE state other
    /// than a rollback, and run the promoted values as its parameters or
    /// tags; --skip-verify turns this off.
    ///
    /// Without --write it prints the unified diff, a commit message and a
    /// pull request title and body; --write changes the file; --open-pr
    /// commits on branch gitops/promote-FROM-to-TO, pushes it and opens (or
    /// updates) the pull request through the GitHub API.
    ///
    /// Exit status: 0 success or nothing to promote, 1 refused (order, gate,
    /// an edit that cannot be made in place) or failed.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops promote --from staging --to prod\n  gitops promote --from staging --to next --write --skip-verify\n  gitops promote --from development --to prod --force --format json\n  gitops promote --from staging --open-pr   # in GitHub Actions, with GITHUB_TOKEN"
    )]
    Promote(commands::promote::Args),
    /// Restore an environment's promoted values to those of an earlier commit.
    ///
    /// By default the revision is the most recent earlier commit (following
    /// first parents from HEAD) where the environment's promoted values
    /// differ from now, which undoes the last promotion; --to REV picks
    /// another. The file is edited in place like `promote` does, with the
    /// same --write, outputs and --open-pr (branch gitops/rollback-ENV).
    ///
    /// Exit status: 0 success or nothing to change, 1 refused or failed.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops rollback prod\n  gitops rollback prod --to HEAD~3 --write\n  gitops rollback prod --open-pr --format json"
    )]
    Rollback(commands::rollback::Args),
    /// List every change of an environment's promoted values, from git history.
    ///
    /// For each commit reachable from --rev (newest first) that changed a
    /// promoted key of ENV, with `defaults` from gitops.yaml merged in:
    /// commit, date, author, key and old → new. The environment file is
    /// located at each commit from that commit's gitops.yaml, so renames of
    /// the file (`environments.file`, `environments.path`) are followed.
    /// Nothing contacts AWS.
    ///
    /// Exit status: 0 success (also when nothing changed), 1 error (an
    /// unknown environment or revision), 2 usage error.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops history prod\n  gitops history prod --format json\n  gitops history staging --rev origin/main --max-count 500"
    )]
    History(commands::history::Args),
    /// Write what direct mode would deploy for one environment, for a pipeline.
    ///
    /// Reads the repository folder (a pipeline's source artifact needs no
    /// git) and writes the environment's template (`template.yaml`, its
    /// `template-file-path` honoured) and a CloudFormation template
    /// configuration (`template-configuration.json`: every parameter and
    /// every tag, `gitops:*` included). A pipeline's CloudFormation action
    /// reads both (`TemplatePath`, `TemplateConfiguration`), so pipeline mode
    /// deploys exactly what direct mode would. Nothing contacts AWS.
    ///
    /// Exit status: 0 success, 1 error (an invalid repository, an unknown
    /// environment, a file that cannot be written), 2 usage error.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  gitops render --environment staging --commit \"$COMMIT\" --out render\n  gitops render -e prod --commit 0123abc --out /tmp/r --format json"
    )]
    Render(commands::render::Args),
}

impl Command {
    /// The exit code for an error. validate, envs and whoami keep their
    /// documented 2; later commands use 1 (2 means "changes" for detect).
    fn error_exit_code(&self) -> u8 {
        match self {
            Command::Validate(_) | Command::Envs(_) | Command::Whoami(_) => 2,
            Command::Detect(_)
            | Command::Deploy(_)
            | Command::Plan(_)
            | Command::Promote(_)
            | Command::Rollback(_)
            | Command::History(_)
            | Command::Render(_)
            | Command::Status(_)
            | Command::Drift(_) => 1,
        }
    }
}

/// What every command gets.
#[derive(Debug, Clone)]
pub struct Globals {
    pub repo: PathBuf,
    pub format: Format,
    /// `--format html`: print the status board (`format` is then text).
    pub html: bool,
    pub color: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS; // --help, --version
            }
            // Through `eprint!`: the arguments may hold anything.
            eprint!("{}", e.render());
            // A usage error: 1 for detect, plan and drift, whose 2 means "changes".
            let detect = std::env::args()
                .skip(1)
                .any(|a| a == "detect" || a == "plan" || a == "drift" || a == "status");
            return ExitCode::from(if detect { 1 } else { 2 });
        }
    };
    let html = cli.format == FormatArg::Html;
    if html && !matches!(cli.command, Command::Status(_) | Command::Drift(_)) {
        eprintln!("error: --format html is for `gitops status` and `gitops drift` (the status board); use text, json or markdown here");
        return ExitCode::from(cli.command.error_exit_code());
    }
    let globals = Globals {
        repo: cli.repo,
        format: match cli.format {
            FormatArg::Json => Format::Json,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Text | FormatArg::Html => Format::Text,
        },
        html,
        color: output::use_color(cli.color),
    };
    let error_code = cli.command.error_exit_code();
    let result = match cli.command {
        Command::Validate(a) => commands::validate::run(&globals, a),
        Command::Envs(a) => commands::envs::run(&globals, a),
        Command::Whoami(a) => commands::whoami::run(&globals, a),
        Command::Detect(a) => commands::detect::run(&globals, a),
        Command::Promote(a) => commands::promote::run(&globals, a),
        Command::Rollback(a) => commands::rollback::run(&globals, a),
        Command::History(a) => commands::history::run(&globals, a),
        Command::Deploy(a) => commands::deploy::run(&globals, a),
        Command::Status(a) => commands::status::run(&globals, a),
        Command::Drift(a) => commands::drift::run(&globals, a),
        Command::Plan(a) => commands::plan::run(&globals, a),
        Command::Render(a) => commands::render::run(&globals, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e, globals.color);
            ExitCode::from(error_code)
        }
    }
}
