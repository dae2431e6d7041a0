//! Paging through a NextToken API, written once for every collector.
//!
//! A collector says how to fetch one page for a token, then handles the pages as they
//! come:
//!
//! ```ignore
//! let mut pages = Paging::new("LookupEvents").pages(&ctx.stop, |token| fetch(token));
//! while let Some((out, last)) = pages.next_page().await? {
//!     // use `out`; when `last`, commit the checkpoint with this page's events
//! }
//! ```
//!
//! [`Pages`] owns the rest: the token (none for the first request, then the one the
//! previous page returned), stopping when a page's token is missing or empty, refusing a
//! service that returns the token it was just given, and stopping between pages on
//! shutdown. Each page comes with `last`, true on the final page only, so a collector
//! commits its checkpoint in the same transaction as the last page's events: a poll
//! interrupted anywhere before that is simply read again.
//!
//! There is no limit on the number of pages: a poll reads its whole window.

use super::CollectError;
use std::future::Future;
use tokio::sync::watch;

/// A page of a paged API: anything that can say which token asks for the next page.
pub(super) trait Page {
    /// The token for the next page as the service returned it (possibly empty).
    fn next_token(&self) -> Option<&str>;
}

/// Implements [`Page`] with the SDK output's own `next_token()`.
macro_rules! sdk_pages {
    ($($output:ty),+ $(,)?) => {$(
        impl Page for $output {
            fn next_token(&self) -> Option<&str> {
                <$output>::next_token(self)
            }
        }
    )+};
}

sdk_pages!(
    aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput,
    aws_sdk_cloudwatch::operation::describe_alarm_history::DescribeAlarmHistoryOutput,
    aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput,
    aws_sdk_config::operation::list_discovered_resources::ListDiscoveredResourcesOutput,
    aws_sdk_config::operation::get_resource_config_history::GetResourceConfigHistoryOutput,
    aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput,
    aws_sdk_cloudwatchlogs::operation::list_log_anomaly_detectors::ListLogAnomalyDetectorsOutput,
    aws_sdk_cloudwatchlogs::operation::list_anomalies::ListAnomaliesOutput,
);

/// What a repeated token (a page returning the token that asked for it) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnRepeat {
    /// The poll fails: "<operation> returned the same <token member> twice".
    Fail,
    /// Paging ends quietly with what was read; the repeating page is the last.
    End,
}

/// One paged operation: its name and how it treats a repeated token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Paging {
    /// The operation, as errors name it (`LookupEvents`).
    op: &'static str,
    /// The token's member name in the API, as errors name it (`NextToken`).
    token_member: &'static str,
    on_repeat: OnRepeat,
}

impl Paging {
    /// Paging of `op`, whose token member is `NextToken`; a repeated token fails.
    pub(super) const fn new(op: &'static str) -> Self {
        Paging {
            op,
            token_member: "NextToken",
            on_repeat: OnRepeat::Fail,
        }
    }

    /// The token member's name when it is not `NextToken` (CloudWatch Logs: `nextToken`).
    pub(super) const fn token_member(self, name: &'static str) -> Self {
        Paging {
            token_member: name,
            ..self
        }
    }

    /// A repeated token ends paging instead of failing the poll.
    pub(super) const fn end_on_repeat(self) -> Self {
        Paging {
            on_repeat: OnRepeat::End,
            ..self
        }
    }

    /// The pages of this operation: `fetch(token)` requests one page (rate limiting and
    /// retries are its business, normally through `Ctx::call`); `stop` is the shutdown
    /// signal (`ctx.stop`). Nothing is requested before the first `next_page`.
    pub(super) fn pages<F, Fut, P>(self, stop: &watch::Receiver<bool>, fetch: F) -> Pages<'_, F>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<P, CollectError>>,
        P: Page,
    {
        Pages {
            paging: self,
            stop,
            fetch,
            after: After::Start,
        }
    }
}

/// Where paging stands after the page last returned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum After {
    /// Nothing requested yet.
    Start,
    /// The next page is asked for with this token.
    Next(String),
    /// The last page returned repeated its token, and that fails the poll.
    Repeated,
    /// No more pages (or paging failed).
    End,
}

/// The pages of one paged operation, fetched one at a time; see [`Paging::pages`].
pub(super) struct Pages<'s, F> {
    paging: Paging,
    stop: &'s watch::Receiver<bool>,
    fetch: F,
    after: After,
}

impl<F> Pages<'_, F> {
    /// The next page and whether it is the last, or `None` when every page was read.
    ///
    /// Errors: the fetch's own; `CollectError::stopped()` when shutdown was signalled
    /// while more pages remain; and, when the page before repeated its token, a
    /// permanent "<operation> returned the same <token member> twice" (that page is
    /// handed out first, not as the last, so no checkpoint goes with it). After an
    /// error there are no more pages.
    pub(super) async fn next_page<Fut, P>(&mut self) -> Result<Option<(P, bool)>, CollectError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<P, CollectError>>,
        P: Page,
    {
        let token = match std::mem::replace(&mut self.after, After::End) {
            After::Start => None,
            After::End => return Ok(None),
            After::Repeated => {
                return Err(CollectError::permanent(format!(
                    "{} returned the same {} twice",
                    self.paging.op, self.paging.token_member
                )))
            }
            After::Next(t) => {
                if *self.stop.borrow() {
                    return Err(CollectError::stopped());
                }
                Some(t)
            }
        };
        let page = (self.fetch)(token.clone()).await?;
        self.after = match page.next_token().filter(|t| !t.is_empty()) {
            None => After::End,
            Some(t) if token.as_deref() == Some(t) => match self.paging.on_repeat {
                OnRepeat::Fail => After::Repeated,
                OnRepeat::End => After::End,
            },
            Some(t) => After::Next(t.to_string()),
        };
        let last = self.after == After::End;
        Ok(Some((page, last)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake page: some items and the token it returns.
    #[derive(Debug, Clone)]
    struct FakePage {
        items: Vec<u32>,
        next: Option<&'static str>,
    }

    impl Page for FakePage {
        fn next_token(&self) -> Option<&str> {
            self.next
        }
    }

    fn page(items: &[u32], next: Option<&'static str>) -> FakePage {
        FakePage {
            items: items.to_vec(),
            next,
        }
    }

    /// What a run did: the tokens requested, the pages handled (items and `last`), the
    /// checkpoints committed (one with each `last` page, as the collectors do), and the
    /// result.
    #[derive(Debug)]
    struct Run {
        requests: Vec<Option<String>>,
        handled: Vec<(Vec<u32>, bool)>,
        checkpoints: usize,
        result: Result<(), CollectError>,
    }

    /// Pages through `pages` served in order (an `Err` is a failed fetch) the way a
    /// collector does; shutdown is signalled once `stop_after` pages were handled.
    async fn run(
        paging: Paging,
        pages: Vec<Result<FakePage, CollectError>>,
        stop_after: Option<usize>,
    ) -> Run {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut requests = Vec::new();
        let mut handled = Vec::new();
        let mut checkpoints = 0;
        let mut source = pages.into_iter();
        let mut pager = paging.pages(&stop_rx, |token| {
            requests.push(token);
            let page = source
                .next()
                .unwrap_or_else(|| Err(CollectError::permanent("read past the end")));
            async move { page }
        });
        let result = async {
            while let Some((p, last)) = pager.next_page().await? {
                handled.push((p.items, last));
                if last {
                    checkpoints += 1;
                }
                if Some(handled.len()) == stop_after {
                    let _ = stop_tx.send(true);
                }
            }
            Ok(())
        }
        .await;
        drop(pager);
        Run {
            requests,
            handled,
            checkpoints,
            result,
        }
    }

    fn tokens(t: &[Option<&str>]) -> Vec<Option<String>> {
        t.iter().map(|t| t.map(str::to_string)).collect()
    }

    #[tokio::test]
    async fn follows_tokens_to_the_end() {
        let r = run(
            Paging::new("Op"),
            vec![
                Ok(page(&[1, 2], Some("a"))),
                Ok(page(&[3], Some("b"))),
                Ok(page(&[4], None)),
            ],
            None,
        )
        .await;
        assert_eq!(r.result, Ok(()));
        assert_eq!(r.requests, tokens(&[None, Some("a"), Some("b")]));
        assert_eq!(
            r.handled,
            vec![(vec![1, 2], false), (vec![3], false), (vec![4], true)]
        );
        assert_eq!(r.checkpoints, 1);
    }

    #[tokio::test]
    async fn a_single_page_is_the_last() {
        let r = run(Paging::new("Op"), vec![Ok(page(&[1], None))], None).await;
        assert_eq!(r.result, Ok(()));
        assert_eq!(r.requests, tokens(&[None]));
        assert_eq!(r.handled, vec![(vec![1], true)]);
        assert_eq!(r.checkpoints, 1);
    }

    #[test]
    fn nothing_is_requested_before_the_first_page_is_asked_for() {
        let (_stop_tx, stop_rx) = watch::channel(false);
        let mut requests = 0;
        let pager = Paging::new("Op").pages(&stop_rx, |_token| {
            requests += 1;
            async { Ok(page(&[], None)) }
        });
        drop(pager);
        assert_eq!(requests, 0);
    }

    #[tokio::test]
    async fn a_repeated_token_is_refused_naming_the_operation() {
        let r = run(
            Paging::new("LookupEvents"),
            vec![
                Ok(page(&[1], Some("a"))),
                Ok(page(&[2], Some("a"))),
                Ok(page(&[3], None)),
            ],
            None,
        )
        .await;
        assert_eq!(
            r.result,
            Err(CollectError::permanent(
                "LookupEvents returned the same NextToken twice"
            ))
        );
        assert_eq!(r.requests, tokens(&[None, Some("a")]));
        // The repeating page is still handed out, but never as the last: no checkpoint.
        assert_eq!(r.handled, vec![(vec![1], false), (vec![2], false)]);
        assert_eq!(r.checkpoints, 0);

        let r = run(
            Paging::new("ListAnomalies").token_member("nextToken"),
            vec![Ok(page(&[1], Some("a"))), Ok(page(&[2], Some("a")))],
            None,
        )
        .await;
        let Err(e) = r.result else {
            panic!("{:?}", r.result)
        };
        assert_eq!(e.message, "ListAnomalies returned the same nextToken twice");
        assert!(!e.transient);
    }

    #[tokio::test]
    async fn only_the_token_just_sent_counts_as_repeated() {
        let r = run(
            Paging::new("Op"),
            vec![
                Ok(page(&[1], Some("a"))),
                Ok(page(&[2], Some("b"))),
                Ok(page(&[3], Some("a"))),
                Ok(page(&[4], None)),
            ],
            None,
        )
        .await;
        assert_eq!(r.result, Ok(()));
        assert_eq!(r.requests, tokens(&[None, Some("a"), Some("b"), Some("a")]));
    }

    #[tokio::test]
    async fn end_on_repeat_stops_quietly_with_that_page_last() {
        let r = run(
            Paging::new("ListDiscoveredResources").end_on_repeat(),
            vec![
                Ok(page(&[1], Some("a"))),
                Ok(page(&[2], Some("a"))),
                Ok(page(&[3], None)),
            ],
            None,
        )
        .await;
        assert_eq!(r.result, Ok(()));
        assert_eq!(r.requests, tokens(&[None, Some("a")]));
        assert_eq!(r.handled, vec![(vec![1], false), (vec![2], true)]);
        assert_eq!(r.checkpoints, 1);
    }

    #[tokio::test]
    async fn an_empty_token_ends_paging() {
        let r = run(
            Paging::new("Op"),
            vec![
                Ok(page(&[1], Some("a"))),
                Ok(page(&[2], Some(""))),
                Ok(page(&[3], None)),
            ],
            None,
        )
        .await;
        assert_eq!(r.result, Ok(()));
        assert_eq!(r.requests, tokens(&[None, Some("a")]));
        assert_eq!(r.handled, vec![(vec![1], false), (vec![2], true)]);
        assert_eq!(r.checkpoints, 1);

        // An empty token on the first page: one request.
        let r = run(Paging::new("Op"), vec![Ok(page(&[1], Some("")))], None).await;
        assert_eq!(r.result, Ok(()));
        assert_eq!(r.requests, tokens(&[None]));
        assert_eq!(r.handled, vec![(vec![1], true)]);
    }

    #[tokio::test]
    async fn the_last_page_hook_fires_once_on_the_last_page_only() {
        let pages: Vec<_> = [Some("a"), Some("b"), Some("c"), Some("d"), None]
            .into_iter()
            .enumerate()
            .map(|(i, next)| Ok(page(&[i as u32], next)))
            .collect();
        let r = run(Paging::new("Op"), pages, None).await;
        assert_eq!(r.result, Ok(()));
        assert_eq!(r.checkpoints, 1);
        let lasts: Vec<bool> = r.handled.iter().map(|(_, last)| *last).collect();
        assert_eq!(lasts, vec![false, false, false, false, true]);
    }

    #[tokio::test]
    async fn a_fetch_error_propagates_and_no_checkpoint_is_made() {
        let boom = CollectError::transient("Op: ServiceUnavailable (HTTP 503)");
        let r = run(
            Paging::new("Op"),
            vec![
                Ok(page(&[1], Some("a"))),
                Err(boom.clone()),
                Ok(page(&[3], None)),
            ],
            None,
        )
        .await;
        assert_eq!(r.result, Err(boom.clone()));
        assert_eq!(r.requests, tokens(&[None, Some("a")]));
        assert_eq!(r.handled, vec![(vec![1], false)]);
        assert_eq!(r.checkpoints, 0);

        // Failing on the first request: nothing handled at all.
        let r = run(Paging::new("Op"), vec![Err(boom.clone())], None).await;
        assert_eq!(r.result, Err(boom));
        assert!(r.handled.is_empty());
        assert_eq!(r.checkpoints, 0);
    }

    #[tokio::test]
    async fn no_page_after_an_error() {
        let (_stop_tx, stop_rx) = watch::channel(false);
        let mut requests = 0;
        let mut pager = Paging::new("Op").pages(&stop_rx, |_token| {
            requests += 1;
            async { Err::<FakePage, _>(CollectError::transient("boom")) }
        });
        assert!(pager.next_page().await.is_err());
        assert!(matches!(pager.next_page().await, Ok(None)));
        drop(pager);
        assert_eq!(requests, 1);
    }

    #[tokio::test]
    async fn shutdown_stops_between_pages() {
        let r = run(
            Paging::new("Op"),
            vec![
                Ok(page(&[1], Some("a"))),
                Ok(page(&[2], Some("b"))),
                Ok(page(&[3], None)),
            ],
            Some(1),
        )
        .await;
        assert_eq!(r.result, Err(CollectError::stopped()));
        assert_eq!(r.requests, tokens(&[None]));
        assert_eq!(r.handled, vec![(vec![1], false)]);
        assert_eq!(r.checkpoints, 0);

        // Shutdown during the last page: that page completes, with its checkpoint.
        let r = run(Paging::new("Op"), vec![Ok(page(&[1], None))], Some(1)).await;
        assert_eq!(r.result, Ok(()));
        assert_eq!(r.checkpoints, 1);
    }
}
