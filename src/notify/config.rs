//! Configuration of GitHub notifications: command-line options (shared by `notify` and
//! `serve`), the token, and the resolved `NotifyConfig`.

use super::NotifyError;
use secrecy::SecretString;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// GitHub's public API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// Where rootline's pages are served by default (`rootline serve`).
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// The label rootline puts on its issues by default.
pub const DEFAULT_LABEL: &str = "rootline";
/// Environment variables holding the token, in order of preference.
pub const TOKEN_ENV: [&str; 2] = ["ROOTLINE_GITHUB_TOKEN", "GITHUB_TOKEN"];

/// GitHub notification options, for `rootline notify` and (flattened) `rootline serve`.
///
/// Nothing here holds the token itself: it is read from `ROOTLINE_GITHUB_TOKEN`,
/// `GITHUB_TOKEN` or `--github-token-file` by [`NotifyConfig::from_env_and_args`].
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubOptions {
    /// The repository to open issues in, as owner/name. Notifications are off without it.
    #[arg(long, env = "ROOTLINE_GITHUB_REPO", value_name = "OWNER/NAME")]
    pub github_repo: Option<String>,
    /// The GitHub REST API base URL (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(long, env = "ROOTLINE_GITHUB_API_URL", default_value = DEFAULT_API_URL)]
    pub github_api_url: String,
    /// A file holding the GitHub token. Without it the token comes from
    /// ROOTLINE_GITHUB_TOKEN, then GITHUB_TOKEN. The token is never logged or stored.
    #[arg(long, value_name = "PATH")]
    pub github_token_file: Option<PathBuf>,
    /// Label for rootline's issues (repeatable). The first one is also how rootline finds
    /// its own issues again, so keep it stable.
    #[arg(long = "github-label", value_name = "LABEL", default_value = DEFAULT_LABEL)]
    #[serde(alias = "github_label")]
    pub github_labels: Vec<String>,
    /// Base URL of rootline's pages, for the links in issues.
    #[arg(long, env = "ROOTLINE_PUBLIC_URL", default_value = DEFAULT_PUBLIC_URL)]
    pub public_url: String,
    /// Only a top-ranked hypothesis with at least this score gets an issue.
    #[arg(long, default_value_t = 0.3, value_name = "SCORE")]
    pub min_score: f64,
    /// Only incidents still open (not resolved) qualify.
    #[arg(long)]
    pub only_open: bool,
    /// Only incidents opened at or after this time (RFC 3339) qualify; use it when
    /// turning notifications on over a store that already holds old incidents.
    #[arg(long, value_name = "TIME")]
    pub incidents_since: Option<String>,
    /// Timeout of each GitHub request, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub github_timeout: f64,
    /// First retry delay, in seconds; it doubles on each retry (with jitter).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub github_retry_base: f64,
    /// Longest retry delay, in seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub github_retry_max: f64,
    /// Attempts per delivery before leaving it for the next pass.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub github_max_attempts: u32,
    /// Longest wait rootline accepts from a rate limit (Retry-After, x-ratelimit-reset),
    /// in seconds; a longer one leaves the delivery for a later pass.
    #[arg(long, default_value_t = 900.0, value_name = "SECONDS")]
    pub github_max_wait: f64,
    /// After a request to create something whose outcome is unknown (timeout, dropped
    /// connection, 5xx), wait this long before looking for it again, in seconds
    /// (default: the request timeout).
    #[arg(long, value_name = "SECONDS")]
    pub github_settle: Option<f64>,
    /// How often the worker looks for new work, in seconds.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub notify_poll_interval: f64,
}

impl Default for GithubOptions {
    /// The same defaults as the command line.
    fn default() -> Self {
        GithubOptions {
            github_repo: None,
            github_api_url: DEFAULT_API_URL.to_string(),
            github_token_file: None,
            github_labels: vec![DEFAULT_LABEL.to_string()],
            public_url: DEFAULT_PUBLIC_URL.to_string(),
            min_score: 0.3,
            only_open: false,
            incidents_since: None,
            github_timeout: 10.0,
            github_retry_base: 1.0,
            github_retry_max: 60.0,
            github_max_attempts: 8,
            github_max_wait: 900.0,
            github_settle: None,
            notify_poll_interval: 30.0,
        }
    }
}

impl GithubOptions {
    /// These options (from the config file) with every option of `flags` that differs
    /// from its default put over them: what `rootline notify --config FILE ...` runs with.
    pub fn overlaid_by(self, flags: &GithubOptions) -> GithubOptions {
        let d = GithubOptions::default();
        macro_rules! pick {
            ($($f:ident),*) => {
                GithubOptions {
                    $($f: if flags.$f != d.$f { flags.$f.clone() } else { self.$f },)*
                }
            };
        }
        pick!(
            github_repo,
            github_api_url,
            github_token_file,
            github_labels,
            public_url,
            min_score,
            only_open,
            incidents_since,
            github_timeout,
            github_retry_base,
            github_retry_max,
            github_max_attempts,
            github_max_wait,
            github_settle,
            notify_poll_interval
        )
    }

    /// Options from a configuration file's `[notify]` table, with the flag names in
    /// snake case (`github_repo = "owner/name"`, `min_score = 0.5`, `github_labels =
    /// ["rootline"]`, ...); missing keys take the command line's defaults. There is no
    /// key for the token itself: use `github_token_file` or the environment.
    pub fn from_toml(table: &toml::Table) -> Result<GithubOptions, NotifyError> {
        GithubOptions::deserialize(toml::Value::Table(table.clone()))
            .map_err(|e| NotifyError::Config(format!("invalid [notify] section: {}", e.message())))
    }

    /// True when a repository is configured, i.e. notifications are wanted.
    pub fn is_configured(&self) -> bool {
        self.github_repo
            .as_deref()
            .is_some_and(|r| !r.trim().is_empty())
    }
}

/// A GitHub repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub owner: String,
    pub name: String,
}

impl Repo {
    /// Parses owner/name.
    pub fn parse(s: &str) -> Result<Repo, NotifyError> {
        let bad = || {
            NotifyError::Config(format!(
                "--github-repo {s:?} is not owner/name (letters, digits, '-', '_' and '.')"
            ))
        };
        let (owner, name) = s.trim().split_once('/').ok_or_else(bad)?;
        let ok = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !ok(owner) || !ok(name) {
            return Err(bad());
        }
        Ok(Repo {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Timeouts, retries and waits for GitHub requests. Every wait is configurable so tests
/// can make them small.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Timeout of each request (connect, send, read the whole response).
    pub request_timeout: Duration,
    /// First backoff delay; doubles per attempt, with jitter, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Attempts per delivery and pass.
    pub max_attempts: u32,
    /// Longest rate-limit wait accepted; longer ones end the pass for that delivery.
    pub max_wait: Duration,
    /// Wait before looking again after a create request with an unknown outcome.
    pub settle: Duration,
    /// Wait after a secondary rate limit that names no time (GitHub: "at least one minute").
    pub rate_limit_default: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            request_timeout: Duration::from_secs(10),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_attempts: 8,
            max_wait: Duration::from_secs(900),
            settle: Duration::from_secs(10),
            rate_limit_default: Duration::from_secs(60),
        }
    }
}

/// Everything the notification worker needs, resolved and validated.
///
/// `Debug` never shows the token (it is a `SecretString`, printed as `[REDACTED]`).
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub repo: Repo,
    /// API base URL without a trailing slash.
    pub api_url: String,
    /// None only in dry-run mode.
    pub token: Option<SecretString>,
    /// Labels for new issues; the first one is used to find rootline's issues again.
    pub labels: Vec<String>,
    /// Base URL of rootline's pages, without a trailing slash.
    pub public_url: String,
    pub min_score: f64,
    pub only_open: bool,
    /// Epoch ms; incidents opened before it do not qualify.
    pub incidents_since: Option<i64>,
    pub retry: RetryPolicy,
    pub poll_interval: Duration,
    /// Print requests instead of sending them; append nothing.
    pub dry_run: bool,
    /// Deliver what is due once, then return.
    pub once: bool,
    /// Re-request failed deliveries on the first pass.
    pub retry_failed: bool,
    /// Where incidents come from. true (the default): the worker analyses the log
    /// itself whenever upstream events arrived, appending the engine's conclusions.
    /// false: it reads the conclusions another analyser appends (`serve`'s background
    /// analyser), so the log is not analysed twice.
    pub analyze: bool,
    /// Pages of 100 issues (or comments) scanned for a marker before creating.
    pub list_max_pages: u32,
    pub user_agent: String,
}

fn seconds(flag: &str, v: f64) -> Result<Duration, NotifyError> {
    if v.is_finite() && (0.0..1e9).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(NotifyError::Config(format!(
            "--{flag} {v} is not a number of seconds"
        )))
    }
}

fn trim_url(flag: &str, s: &str) -> Result<String, NotifyError> {
    let t = s.trim().trim_end_matches('/');
    if !(t.starts_with("http://") || t.starts_with("https://")) || t.len() <= "https://".len() {
        return Err(NotifyError::Config(format!(
            "--{flag} {s:?} is not an http(s) URL"
        )));
    }
    if reqwest::Url::parse(t).is_err() {
        return Err(NotifyError::Config(format!(
            "--{flag} {s:?} is not a valid URL"
        )));
    }
    Ok(t.to_string())
}

impl NotifyConfig {
    /// Resolves options and the process environment into a configuration: the token
    /// from `--github-token-file`, else `ROOTLINE_GITHUB_TOKEN`, else `GITHUB_TOKEN`.
    /// Without a token only `dry_run` is allowed. Errors name the flag at fault and
    /// never include the token.
    pub fn from_env_and_args(
        opts: &GithubOptions,
        dry_run: bool,
    ) -> Result<NotifyConfig, NotifyError> {
        Self::from_args_with_env(opts, dry_run, |k| std::env::var(k).ok())
    }

    /// As `from_env_and_args`, with the environment given as a function (for tests).
    pub fn from_args_with_env(
        opts: &GithubOptions,
        dry_run: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<NotifyConfig, NotifyError> {
        let repo =
            match opts.github_repo.as_deref() {
                Some(r) if !r.trim().is_empty() => Repo::parse(r)?,
                _ => return Err(NotifyError::Config(
                    "no repository: pass --github-repo OWNER/NAME (or set ROOTLINE_GITHUB_REPO)"
                        .into(),
                )),
            };
        let token = read_token(opts.github_token_file.as_deref(), &env)?;
        if token.is_none() && !dry_run {
            return Err(NotifyError::Config(format!(
                "no GitHub token: set {} or {}, or pass --github-token-file",
                TOKEN_ENV[0], TOKEN_ENV[1]
            )));
        }
        if !(opts.min_score.is_finite() && (0.0..=1.0).contains(&opts.min_score)) {
            return Err(NotifyError::Config(format!(
                "--min-score {} is not in [0, 1]",
                opts.min_score
            )));
        }
        let mut labels = Vec::new();
        for l in &opts.github_labels {
            let l = l.trim();
            if l.is_empty() || l.len() > 50 || l.contains(',') || l.chars().any(char::is_control) {
                return Err(NotifyError::Config(format!(
                    "--github-label {l:?}: labels are 1 to 50 characters, without commas"
                )));
            }
            if !labels.iter().any(|x: &String| x == l) {
                labels.push(l.to_string());
            }
        }
        let incidents_since = match &opts.incidents_since {
            None => None,
            Some(t) => Some(crate::model::parse_time(t).ok_or_else(|| {
                NotifyError::Config(format!("--incidents-since {t:?} is not an RFC 3339 time"))
            })?),
        };
        let request_timeout = seconds("github-timeout", opts.github_timeout)?;
        if request_timeout.is_zero() {
            return Err(NotifyError::Config(
                "--github-timeout must be more than 0".into(),
            ));
        }
        let retry = RetryPolicy {
            request_timeout,
            base_delay: seconds("github-retry-base", opts.github_retry_base)?,
            max_delay: seconds("github-retry-max", opts.github_retry_max)?,
            max_attempts: opts.github_max_attempts.max(1),
            max_wait: seconds("github-max-wait", opts.github_max_wait)?,
            settle: match opts.github_settle {
                Some(s) => seconds("github-settle", s)?,
                None => request_timeout,
            },
            rate_limit_default: Duration::from_secs(60)
                .min(seconds("github-max-wait", opts.github_max_wait)?),
        };
        Ok(NotifyConfig {
            repo,
            api_url: trim_url("github-api-url", &opts.github_api_url)?,
            token,
            labels,
            public_url: trim_url("public-url", &opts.public_url)?,
            min_score: opts.min_score,
            only_open: opts.only_open,
            incidents_since,
            retry,
            poll_interval: seconds("notify-poll-interval", opts.notify_poll_interval)?
                .max(Duration::from_millis(10)),
            dry_run,
            once: false,
            retry_failed: false,
            analyze: true,
            list_max_pages: 10,
            user_agent: format!("rootline/{}", env!("CARGO_PKG_VERSION")),
        })
    }

    /// The token's text, if any.
    #[cfg(test)]
    pub(crate) fn token_text(&self) -> Option<&str> {
        self.token
            .as_ref()
            .map(secrecy::ExposeSecret::expose_secret)
    }
}

/// Reads the token: the file wins, then the environment variables in order. Surrounding
/// whitespace is dropped; an empty value counts as none.
fn read_token(
    file: Option<&std::path::Path>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<SecretString>, NotifyError> {
    let raw = if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            NotifyError::Config(format!(
                "cannot read --github-token-file {}: {e}",
                path.display()
            ))
        })?;
        let t = text.trim().to_string();
        if t.is_empty() {
            return Err(NotifyError::Config(format!(
                "--github-token-file {} is empty",
                path.display()
            )));
        }
        Some(t)
    } else {
        TOKEN_ENV
            .iter()
            .filter_map(|k| env(k))
            .map(|v| v.trim().to_string())
            .find(|v| !v.is_empty())
    };
    match raw {
        None => Ok(None),
        Some(t) => {
            // The token goes into an HTTP header: refuse what a header cannot carry,
            // without echoing the value.
            if t.chars().any(|c| !c.is_ascii_graphic()) {
                return Err(NotifyError::Config(
                    "the GitHub token contains spaces or characters that cannot go in an HTTP header".into(),
                ));
            }
            Ok(Some(SecretString::from(t)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        o: GithubOptions,
    }

    fn opts(args: &[&str]) -> GithubOptions {
        let mut v = vec!["t"];
        v.extend_from_slice(args);
        T::parse_from(v).o
    }

    #[test]
    fn flags_that_differ_from_their_defaults_win_over_the_file() {
        let file: toml::Table = toml::from_str(
            "github_repo = \"acme/ops\"\nmin_score = 0.5\npublic_url = \"https://r.example\"\n",
        )
        .unwrap();
        let file = GithubOptions::from_toml(&file).unwrap();
        // No flags: the file's values.
        let o = file.clone().overlaid_by(&opts(&[]));
        assert_eq!(o.github_repo.as_deref(), Some("acme/ops"));
        assert_eq!(
            (o.min_score, o.public_url.as_str()),
            (0.5, "https://r.example")
        );
        // A flag set away from its default wins; the rest stays the file's.
        let o = file
            .clone()
            .overlaid_by(&opts(&["--github-repo", "acme/other", "--only-open"]));
        assert_eq!(o.github_repo.as_deref(), Some("acme/other"));
        assert!(o.only_open);
        assert_eq!(o.min_score, 0.5);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let o = opts(&["--github-repo", "o/r"]);
        let c = NotifyConfig::from_args_with_env(&o, false, |k| {
            (k == "GITHUB_TOKEN").then(|| "ghp_verysecretvalue123".to_string())
        })
        .unwrap();
        let dbg = format!("{c:?} {o:?}");
        assert!(!dbg.contains("verysecret"), "{dbg}");
        assert_eq!(c.token_text(), Some("ghp_verysecretvalue123"));
    }

    #[test]
    fn token_precedence_and_errors() {
        let o = opts(&["--github-repo", "o/r"]);
        let c = NotifyConfig::from_args_with_env(&o, false, |k| match k {
            "ROOTLINE_GITHUB_TOKEN" => Some("first".into()),
            "GITHUB_TOKEN" => Some("second".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.token_text(), Some("first"));
        let e = NotifyConfig::from_args_with_env(&o, false, |_| None).unwrap_err();
        assert!(e.to_string().contains("ROOTLINE_GITHUB_TOKEN"), "{e}");
        assert!(NotifyConfig::from_args_with_env(&o, true, |_| None).is_ok());
        let e = NotifyConfig::from_args_with_env(&o, false, |_| Some("bad token\n".into()))
            .unwrap_err();
        assert!(!e.to_string().contains("bad token"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "from-file\n").unwrap();
        let o = opts(&[
            "--github-repo",
            "o/r",
            "--github-token-file",
            f.to_str().unwrap(),
        ]);
        let c = NotifyConfig::from_args_with_env(&o, false, |_| Some("env".into())).unwrap();
        assert_eq!(c.token_text(), Some("from-file"));
    }

    #[test]
    fn defaults_and_config_file_match_the_command_line() {
        let cli = opts(&[]);
        let def = GithubOptions::default();
        assert_eq!(format!("{cli:?}"), format!("{def:?}"));
        let t: toml::Table =
            toml::from_str("github_repo = \"o/r\"\nmin_score = 0.5\ngithub_labels = [\"a\", \"b\"]\nonly_open = true")
                .unwrap();
        let o = GithubOptions::from_toml(&t).unwrap();
        assert!(o.is_configured() && o.only_open);
        assert_eq!(
            (o.min_score, o.github_labels.clone()),
            (0.5, vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(o.github_api_url, DEFAULT_API_URL);
        let t: toml::Table = toml::from_str("github_token = \"ghp_x\"").unwrap();
        let e = GithubOptions::from_toml(&t).unwrap_err().to_string();
        assert!(e.contains("github_token") && !e.contains("ghp_x"), "{e}");
    }

    #[test]
    fn validates_repo_urls_and_numbers() {
        for bad in ["o", "o/", "/r", "o/r/x", "o r/x", "../r"] {
            assert!(Repo::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Repo::parse("octo-org/hello.world").unwrap().to_string(),
            "octo-org/hello.world"
        );
        let env = |_: &str| Some("t".to_string());
        let o = opts(&["--github-repo", "o/r", "--github-api-url", "ftp://x"]);
        assert!(NotifyConfig::from_args_with_env(&o, false, env).is_err());
        let o = opts(&["--github-repo", "o/r", "--min-score", "2"]);
        assert!(NotifyConfig::from_args_with_env(&o, false, env).is_err());
        let o = opts(&[
            "--github-repo",
            "o/r",
            "--github-api-url",
            "https://ghe.example/api/v3/",
        ]);
        let c = NotifyConfig::from_args_with_env(&o, false, env).unwrap();
        assert_eq!(c.api_url, "https://ghe.example/api/v3");
        assert_eq!(c.labels, vec!["rootline".to_string()]);
        assert_eq!(c.retry.settle, c.retry.request_timeout);
    }
}
