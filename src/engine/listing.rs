//! Reading Drata's listing defensively. It is offset-paged over live data: `total` can be
//! stale or missing, a page can repeat or skip items while Drata syncs, an item can be
//! malformed, and a broken server can page forever. [`ListingReader`] is the pure
//! decision of when to ask for the next page and what to warn about; [`fetch`] drives it
//! through the engine, so every page is rate-limited and retried like any request. Once
//! page 1 says `total`, the identities' pages it announces are read ahead together
//! ([`ReadAhead`]), and taken in one by one as a serial read would; a page that does not
//! fit the ones before it ([`fits`]) sends the read back to one page at a time from there.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use super::requests::{Ended, Engine, Request};
use crate::drata::{Added, CurrentState, Failure, Page, UserPage, Users, PAGE_LIMIT};
use crate::model::{Lookup, LookupError, LookupKey};

/// With no usable `total`, paging stops here: 20,000 pages of 50 is a million
/// identities, far beyond any tenant, and memory stays bounded.
const MAX_PAGES_WITHOUT_TOTAL: u64 = 20_000;
/// Past the pages `total` announces, paging goes on while pages bring new ids (items
/// added while reading), but at most this many pages more...
const EXTRA_PAGES_MIN: u64 = 10;
/// ...or this share of the announced pages, whichever is larger.
const EXTRA_PAGES_SHARE: f64 = 0.5;
/// Pages read ahead at most, the one awaited included. The in-flight limit and the rate
/// limiter decide how many are out at once (the same as for the updates); this bounds what a
/// listing that overstates its `total` costs (the pages read ahead past a short page are
/// read for nothing) and what waits in memory. At Drata's 7.5 requests a second, 8 pages
/// cover a latency of about a second.
const READ_AHEAD: usize = 8;

/// What one page brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageFacts {
    /// Items on the page, readable or not.
    pub items: u64,
    /// Ids not seen on an earlier page.
    pub new_ids: u64,
    /// Items skipped because they had no readable id.
    pub malformed: u64,
    pub total: Option<u64>,
}

/// Why the listing might not hold every identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListingWarning {
    /// A full page brought no id not seen before: the server repeats itself.
    NoNewIds { page: u64 },
    /// Paging went far past what `total` announced, or past the ceiling without one.
    TooManyPages { pages: u64 },
    /// Items without a readable id were skipped.
    Malformed { items: u64 },
    /// `total` and the distinct ids read disagree.
    CountMismatch { total: u64, read: u64 },
    /// No page said how many identities there are.
    NoTotal,
}

impl std::fmt::Display for ListingWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListingWarning::NoNewIds { page } => write!(
                f,
                "page {page} of the listing brought no identity not already seen; stopped paging"
            ),
            ListingWarning::TooManyPages { pages } => write!(
                f,
                "the listing was still going after {pages} pages, far past its total; stopped paging"
            ),
            ListingWarning::Malformed { items } => {
                write!(f, "{items} listing items had no readable id and were skipped")
            }
            ListingWarning::CountMismatch { total, read } => write!(
                f,
                "the listing announced {total} identities but {read} distinct ones were read"
            ),
            ListingWarning::NoTotal => f.write_str("the listing did not say how many identities it holds"),
        }
    }
}

/// The paging decision, page after page.
#[derive(Debug, Default)]
pub(crate) struct ListingReader {
    pages: u64,
    read: u64,
    malformed: u64,
    /// The largest `total` announced so far.
    total: Option<u64>,
    stopped_early: Option<ListingWarning>,
}

impl ListingReader {
    /// The page to ask for next (1-based).
    pub(crate) fn next_page(&self) -> u64 {
        self.pages + 1
    }

    /// Takes in a page; true when another page should be read.
    pub(crate) fn more_after(&mut self, page: PageFacts) -> bool {
        self.pages += 1;
        self.read += page.new_ids;
        self.malformed += page.malformed;
        if let Some(total) = page.total {
            self.total = Some(self.total.map_or(total, |t| t.max(total)));
        }
        // A short page is the last one, whatever `total` says.
        if page.items < PAGE_LIMIT {
            return false;
        }
        if page.new_ids == 0 {
            self.stopped_early = Some(ListingWarning::NoNewIds { page: self.pages });
            return false;
        }
        if self.pages >= self.page_ceiling() {
            self.stopped_early = Some(ListingWarning::TooManyPages { pages: self.pages });
            return false;
        }
        true
    }

    fn page_ceiling(&self) -> u64 {
        match self.total {
            None => MAX_PAGES_WITHOUT_TOTAL,
            Some(total) => {
                let announced = total.div_ceil(PAGE_LIMIT);
                let extra = EXTRA_PAGES_MIN.max((announced as f64 * EXTRA_PAGES_SHARE) as u64);
                (announced + extra).min(MAX_PAGES_WITHOUT_TOTAL)
            }
        }
    }

    /// What the reader of the result must know; empty when the listing was consistent.
    pub(crate) fn warnings(&self) -> Vec<ListingWarning> {
        let mut warnings: Vec<ListingWarning> = self.stopped_early.iter().cloned().collect();
        if self.malformed > 0 {
            warnings.push(ListingWarning::Malformed {
                items: self.malformed,
            });
        }
        match self.total {
            None => warnings.push(ListingWarning::NoTotal),
            Some(total) if total != self.read => warnings.push(ListingWarning::CountMismatch {
                total,
                read: self.read,
            }),
            Some(_) => {}
        }
        warnings
    }

    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    /// The last page to read ahead once page 1 announced `total`: the pages an honest
    /// listing of `total` identities takes, a full last page needing an empty one after it
    /// (`ceil((total + 1) / 50)`); 1, none ahead, without a total. Never past the ceiling.
    pub(crate) fn read_ahead_to(total: Option<u64>) -> u64 {
        total.map_or(1, |total| {
            (total / PAGE_LIMIT + 1).min(MAX_PAGES_WITHOUT_TOTAL)
        })
    }
}

/// Whether page `number`, read ahead, fits the pages taken in before it as a serial read
/// would have found it: the `total` page 1 announced, no id already seen (`seen` of its
/// ids were), and full unless it is the `last` announced. Offset paging shifts when
/// identities appear or vanish during the read; a page read ahead may then hold what a
/// serial read, later, would not: such a page is read again, and the rest one at a time.
pub(crate) fn fits(
    number: u64,
    last: u64,
    first_total: Option<u64>,
    page: PageFacts,
    seen: u64,
) -> bool {
    page.total == first_total && seen == 0 && (page.items == PAGE_LIMIT || number >= last)
}

/// The listing as read, and whether it can be trusted to be complete.
#[derive(Debug)]
pub(crate) struct Listing {
    pub state: CurrentState,
    pub pages: u64,
    pub warnings: Vec<ListingWarning>,
}

impl Listing {
    /// True when ids missing from the listing may still exist in Drata.
    pub(crate) fn may_be_incomplete(&self) -> bool {
        !self.warnings.is_empty()
    }
}

impl Lookup for Listing {
    fn resolve(&self, key: &LookupKey) -> Result<u64, LookupError> {
        self.state.resolve(key)
    }

    fn check(&self, id: u64, key: &LookupKey) -> Result<(), LookupError> {
        self.state.check(id, key)
    }

    fn user(&self, email: &str) -> Result<u64, LookupError> {
        self.state.user(email)
    }
}

/// What a run resolves names through: the identities' listing (usernames, emails beside
/// an id) and the users listing (the emails of link cells), each when it was read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Directory {
    pub listing: Option<Arc<Listing>>,
    pub users: Option<Arc<Users>>,
}

impl Lookup for Directory {
    fn resolve(&self, key: &LookupKey) -> Result<u64, LookupError> {
        match &self.listing {
            Some(listing) => listing.resolve(key),
            None => Err(LookupError::NoMatch(key.clone())),
        }
    }

    /// Without the listing there is nothing to check against.
    fn check(&self, id: u64, key: &LookupKey) -> Result<(), LookupError> {
        self.listing
            .as_ref()
            .map_or(Ok(()), |listing| listing.check(id, key))
    }

    fn user(&self, email: &str) -> Result<u64, LookupError> {
        match &self.users {
            Some(users) => users.resolve(email),
            None => Err(LookupError::UsersUnread(email.to_owned())),
        }
    }
}

/// Why the listing could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ListingError {
    message: String,
    /// Drata refused the listing (403) and the run goes on.
    refused: bool,
}

/// Fetches every identity, `PAGE_LIMIT` at a time, de-duplicated by id.
pub(crate) async fn fetch(engine: &Engine) -> Result<Listing, ListingError> {
    read(engine, Request::ListingPage).await
}

/// As [`fetch`], but a refused listing (403) is `None` and does not stop the run.
pub(crate) async fn fetch_unless_refused(engine: &Engine) -> Result<Option<Listing>, ListingError> {
    match read(engine, Request::ListingPageUnlessRefused).await {
        Ok(listing) => Ok(Some(listing)),
        Err(e) if e.refused => {
            tracing::warn!("{e}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn read(engine: &Engine, request: Request) -> Result<Listing, ListingError> {
    let mut state = CurrentState::default();
    let mut reader = ListingReader::default();
    let first = read_page(engine, request, 1).await?;
    let first_total = first.total;
    let last = ListingReader::read_ahead_to(first_total);
    let mut more = take_page(&mut state, &mut reader, first, 1);
    let mut ahead = Some(ReadAhead::new(2, last, |number| {
        read_page(engine, request, number)
    }));
    while more {
        let number = reader.next_page();
        let early = match ahead.as_mut() {
            Some(pages) => pages.next().await,
            None => None,
        };
        let page = match early {
            Some(page) => {
                let page = page?;
                let seen = page
                    .identities
                    .iter()
                    .filter(|identity| identity.id.is_some_and(|id| state.get(id).is_some()))
                    .count() as u64;
                if fits(number, last, first_total, facts_of(&page, 0), seen) {
                    page
                } else {
                    tracing::debug!(
                        page = number,
                        "the listing moved while it was read: reading it again from this page, \
                         one page at a time"
                    );
                    ahead = None;
                    read_page(engine, request, number).await?
                }
            }
            None => {
                ahead = None;
                read_page(engine, request, number).await?
            }
        };
        more = take_page(&mut state, &mut reader, page, number);
    }
    let warnings = reader.warnings();
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    Ok(Listing {
        state,
        pages: reader.pages(),
        warnings,
    })
}

/// What a page brought, `new_ids` of its identities not seen before.
fn facts_of(page: &Page, new_ids: u64) -> PageFacts {
    PageFacts {
        items: page.items,
        malformed: page.malformed,
        total: page.total,
        new_ids,
    }
}

/// Takes in page `number`: its identities into `state`, its facts into `reader`; true when
/// another page should be read.
fn take_page(
    state: &mut CurrentState,
    reader: &mut ListingReader,
    page: Page,
    number: u64,
) -> bool {
    let mut facts = facts_of(&page, 0);
    for identity in page.identities {
        let id = identity.id;
        match state.add(identity) {
            Added::New => facts.new_ids += 1,
            Added::Conflicting => warn_conflicting(id),
            Added::Repeated | Added::NoId => {}
        }
    }
    tracing::debug!(
        page = number,
        identities = state.len(),
        "reading the current state"
    );
    reader.more_after(facts)
}

/// One page of the identities, through the engine (a slot, the rate limiter, retries).
async fn read_page(engine: &Engine, request: Request, number: u64) -> Result<Page, ListingError> {
    let attempted = engine
        .with_retries("listing", request, || {
            engine.client.list_page(number, PAGE_LIMIT)
        })
        .await;
    match attempted.ended {
        Ended::Done(page) => Ok(page),
        Ended::Failed(failure) => Err(ListingError {
            refused: request == Request::ListingPageUnlessRefused && failure.status() == Some(403),
            message: failure.message,
        }),
        Ended::Stopped(_) => Err(ListingError {
            message: engine.control.stop_message(),
            refused: false,
        }),
    }
}

/// Pages `from..=to` read ahead, [`READ_AHEAD`] at most under way, handed out in order.
/// Each is a request through the engine, so the in-flight limit and the rate limiter decide
/// how many are out at once. Dropping it drops the requests still under way.
struct ReadAhead<F, Fut: Future> {
    next: u64,
    to: u64,
    start: F,
    /// The pages under way, in order, each with its result once it came.
    under_way: VecDeque<UnderWay<Fut>>,
}

/// A page's request under way, and its result once it came.
type UnderWay<Fut> = (Pin<Box<Fut>>, Option<<Fut as Future>::Output>);

impl<F, Fut> ReadAhead<F, Fut>
where
    F: FnMut(u64) -> Fut,
    Fut: Future,
{
    fn new(from: u64, to: u64, start: F) -> Self {
        Self {
            next: from,
            to,
            start,
            under_way: VecDeque::with_capacity(READ_AHEAD),
        }
    }

    /// The next page in order; `None` past the last.
    async fn next(&mut self) -> Option<Fut::Output> {
        while self.under_way.len() < READ_AHEAD && self.next <= self.to {
            self.under_way
                .push_back((Box::pin((self.start)(self.next)), None));
            self.next += 1;
        }
        if self.under_way.is_empty() {
            return None;
        }
        std::future::poll_fn(|cx| {
            for (page, result) in self.under_way.iter_mut() {
                if result.is_none() {
                    if let Poll::Ready(done) = page.as_mut().poll(cx) {
                        *result = Some(done);
                    }
                }
            }
            match self.under_way.front_mut() {
                Some((_, result)) if result.is_some() => Poll::Ready(result.take()),
                _ => Poll::Pending,
            }
        })
        .await
        .inspect(|_| {
            self.under_way.pop_front();
        })
    }
}

/// Reads every page of a listing through the engine (rate-limited, retried), asking
/// for the next page as [`ListingReader`] decides; `take` keeps a page's items and says
/// what the page brought. (The identities' [`fetch`] predates it and pages the same way.)
async fn read_pages<P, F, Fut>(
    engine: &Engine,
    what: &'static str,
    mut page_of: F,
    mut take: impl FnMut(P) -> PageFacts,
) -> Result<ListingReader, ListingError>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<(u16, P), Failure>>,
{
    let mut reader = ListingReader::default();
    loop {
        let number = reader.next_page();
        let attempted = engine
            .with_retries(what, Request::ListingPage, || page_of(number))
            .await;
        let page = match attempted.ended {
            Ended::Done(page) => page,
            Ended::Failed(failure) => {
                return Err(ListingError {
                    message: failure.message,
                    refused: false,
                })
            }
            Ended::Stopped(_) => {
                return Err(ListingError {
                    message: engine.control.stop_message(),
                    refused: false,
                })
            }
        };
        let facts = take(page);
        tracing::debug!(page = number, new = facts.new_ids, "reading the {what}");
        if !reader.more_after(facts) {
            break;
        }
    }
    Ok(reader)
}

/// Fetches every Drata user (`GET /users`), paged and checked like the identities.
pub(crate) async fn fetch_users(engine: &Engine) -> Result<Users, ListingError> {
    let mut users = Users::default();
    let reader = read_pages(
        engine,
        "users listing",
        |number| engine.client.users_page(number, PAGE_LIMIT),
        |page: UserPage| PageFacts {
            items: page.items,
            malformed: page.malformed,
            total: page.total,
            new_ids: page
                .users
                .into_iter()
                .map(|user| u64::from(users.add(user)))
                .sum(),
        },
    )
    .await?;
    for warning in reader.warnings() {
        // The reader's words are the identities'; these are users.
        tracing::warn!("the users listing: {warning}");
    }
    Ok(users)
}

/// Says that an id came twice in different states, and which copy the run uses.
fn warn_conflicting(id: Option<u64>) {
    let id = id.unwrap_or_default();
    tracing::warn!(
        id,
        "identity {id} is listed twice in different states (marked, reason, username or link \
         differ); the later copy, the fresher read, is used"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(new_ids: u64, total: Option<u64>) -> PageFacts {
        PageFacts {
            items: PAGE_LIMIT,
            new_ids,
            malformed: 0,
            total,
        }
    }

    /// Feeds pages until the reader stops; returns how many it read. Bounded, so that a
    /// reader that never stops fails the test at once instead of hanging it.
    fn read_all(reader: &mut ListingReader, mut page: impl FnMut(u64) -> PageFacts) -> u64 {
        for fed in 1..=MAX_PAGES_WITHOUT_TOTAL + 1 {
            if !reader.more_after(page(reader.next_page())) {
                assert_eq!(reader.pages(), fed, "pages counted");
                return fed;
            }
        }
        panic!("the reader never stopped paging");
    }

    #[test]
    fn an_honest_listing_reads_ceil_n_over_50_pages_without_warnings() {
        for (n, pages) in [(0u64, 1u64), (50, 2), (51, 2), (130, 3), (1000, 21)] {
            let mut reader = ListingReader::default();
            let read = read_all(&mut reader, |p| {
                let before = (p - 1) * PAGE_LIMIT;
                let items = n.saturating_sub(before).min(PAGE_LIMIT);
                PageFacts {
                    items,
                    new_ids: items,
                    malformed: 0,
                    total: Some(n),
                }
            });
            assert_eq!(read, pages, "{n} identities");
            assert_eq!(reader.warnings(), [], "{n} identities");
        }
    }

    #[test]
    fn an_understated_total_does_not_stop_paging_while_pages_are_full() {
        let mut reader = ListingReader::default();
        let read = read_all(&mut reader, |p| match p {
            1 | 2 => full(50, Some(50)),
            _ => PageFacts {
                items: 30,
                new_ids: 30,
                malformed: 0,
                total: Some(50),
            },
        });
        assert_eq!(read, 3);
        assert_eq!(
            reader.warnings(),
            [ListingWarning::CountMismatch {
                total: 50,
                read: 130
            }]
        );
    }

    #[test]
    fn a_repeated_page_stops_paging_with_a_warning() {
        let mut reader = ListingReader::default();
        let read = read_all(&mut reader, |p| {
            full(if p <= 2 { 50 } else { 0 }, Some(400))
        });
        assert_eq!(read, 3);
        let warnings = reader.warnings();
        assert!(
            warnings.contains(&ListingWarning::NoNewIds { page: 3 }),
            "{warnings:?}"
        );
        assert!(warnings.contains(&ListingWarning::CountMismatch {
            total: 400,
            read: 100
        }));
    }

    #[test]
    fn an_endless_listing_stops_past_its_total_or_at_the_ceiling() {
        let mut reader = ListingReader::default();
        assert_eq!(
            read_all(&mut reader, |_| full(50, Some(100))),
            2 + EXTRA_PAGES_MIN
        );
        assert!(reader
            .warnings()
            .contains(&ListingWarning::TooManyPages { pages: 12 }));

        let mut reader = ListingReader::default();
        assert_eq!(read_all(&mut reader, |_| full(50, Some(10_000))), 300);

        let mut reader = ListingReader::default();
        assert_eq!(
            read_all(&mut reader, |_| full(50, None)),
            MAX_PAGES_WITHOUT_TOTAL
        );
        assert!(reader.warnings().contains(&ListingWarning::NoTotal));
    }

    #[test]
    fn a_listing_with_warnings_may_be_incomplete_and_answers_lookups_from_its_state() {
        let page = Page::from_body(
            br#"{"data":[{"id":7,"username":"svc-a","email":"a@example.com"}],"total":1}"#,
        )
        .unwrap();
        let mut state = CurrentState::default();
        for identity in page.identities {
            state.add(identity);
        }
        let clean = Listing {
            state,
            pages: 1,
            warnings: Vec::new(),
        };
        assert!(!clean.may_be_incomplete());
        let named = |name: &str| LookupKey {
            username: Some(name.to_owned()),
            ..LookupKey::default()
        };
        assert_eq!(clean.resolve(&named("svc-a")), Ok(7));
        assert!(clean.resolve(&named("nobody")).is_err());
        assert_eq!(clean.check(7, &named("svc-a")), Ok(()));
        assert!(clean.check(7, &named("someone-else")).is_err());
        let warned = Listing {
            warnings: vec![ListingWarning::NoTotal],
            ..clean
        };
        assert!(warned.may_be_incomplete());
    }

    /// A run resolves names through what it read: usernames through the identities'
    /// listing, emails of link cells through the users listing, and says which was not
    /// read rather than guessing.
    #[test]
    fn a_directory_answers_from_the_listings_it_read_and_names_the_missing_one() {
        let page = Page::from_body(
            br#"{"data":[{"id":7,"username":"svc-a","email":"a@example.com"}],"total":1}"#,
        )
        .unwrap();
        let mut state = CurrentState::default();
        for identity in page.identities {
            state.add(identity);
        }
        let listing = Arc::new(Listing {
            state,
            pages: 1,
            warnings: Vec::new(),
        });
        let mut users = Users::default();
        for user in UserPage::from_body(br#"{"data":[{"id":42,"email":"Bob@example.com"}]}"#)
            .unwrap()
            .users
        {
            users.add(user);
        }
        let named = |name: &str| LookupKey {
            username: Some(name.to_owned()),
            ..LookupKey::default()
        };
        let unread = |email: &str| Err(LookupError::UsersUnread(email.to_owned()));
        assert_eq!(listing.user("bob@example.com"), unread("bob@example.com"));

        let both = Directory {
            listing: Some(Arc::clone(&listing)),
            users: Some(Arc::new(users)),
        };
        assert_eq!(both.resolve(&named("svc-a")), Ok(7));
        assert_eq!(
            both.resolve(&named("nobody")),
            Err(LookupError::NoMatch(named("nobody")))
        );
        assert_eq!(both.check(7, &named("svc-a")), Ok(()));
        assert!(matches!(
            both.check(7, &named("someone-else")),
            Err(LookupError::Mismatch { id: 7, .. })
        ));
        assert_eq!(both.user("bob@example.com"), Ok(42));
        assert_eq!(
            both.user("carol@example.com"),
            Err(LookupError::NoUser("carol@example.com".to_owned()))
        );

        let neither = Directory::default();
        assert_eq!(
            neither.resolve(&named("svc-a")),
            Err(LookupError::NoMatch(named("svc-a")))
        );
        assert_eq!(neither.check(7, &named("someone-else")), Ok(()));
        assert_eq!(neither.user("bob@example.com"), unread("bob@example.com"));
    }

    /// Every page of a listing over loopback, through the engine: the simulator's 120
    /// identities are 3 pages of 50.
    #[cfg(feature = "simulator")]
    #[tokio::test]
    async fn fetch_reads_pages_until_the_reader_stops() {
        use crate::drata::{ApiClient, ClientOptions};
        use crate::engine::{ConcurrencyMode, RetryPolicy};
        use crate::simulator::{self, SimulatorConfig};
        let sim = simulator::start(SimulatorConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            identities: 120,
            token: "sim-token".to_owned(),
            ..SimulatorConfig::default()
        })
        .await
        .unwrap();
        let client = ApiClient::new(
            sim.base_url().parse().unwrap(),
            &crate::secret::ApiKey::new("sim-token").unwrap(),
            ClientOptions {
                kind: crate::model::IdentityKind::Infrastructure,
                timeout: std::time::Duration::from_secs(10),
                connections: 1,
                store_roots: None,
                extra_roots: Vec::new(),
            },
        )
        .unwrap();
        let engine = Engine::new(
            client,
            crate::model::Rate::Unlimited,
            std::num::NonZeroU32::MIN,
            RetryPolicy::default(),
            std::sync::Arc::default(),
            ConcurrencyMode::Auto,
        );
        // Bounded, so that a reader that never stops fails the test instead of hanging it.
        let listing = tokio::time::timeout(std::time::Duration::from_secs(30), fetch(&engine))
            .await
            .expect("the listing was read within 30 s")
            .unwrap();
        assert_eq!((listing.pages, listing.state.len()), (3, 120));
        assert_eq!(listing.warnings, []);
    }

    #[test]
    fn pages_are_read_ahead_up_to_the_last_an_honest_total_takes() {
        let table = [
            (None, 1),
            (Some(0), 1),
            (Some(49), 1),
            (Some(50), 2),
            (Some(99), 2),
            (Some(500), 11),
            (Some(501), 11),
            (Some(u64::MAX), MAX_PAGES_WITHOUT_TOTAL),
        ];
        for (total, last) in table {
            assert_eq!(ListingReader::read_ahead_to(total), last, "{total:?}");
        }
    }

    #[test]
    fn a_page_read_ahead_fits_when_nothing_moved() {
        let page = |items, total| PageFacts {
            items,
            new_ids: 0,
            malformed: 0,
            total,
        };
        let t = Some(500);
        // (page, its facts, ids already seen, fits)
        let table = [
            (2, page(50, t), 0, true),
            (10, page(50, t), 0, true),
            (11, page(0, t), 0, true),
            (11, page(50, t), 0, true),
            (2, page(50, Some(501)), 0, false),
            (2, page(50, Some(499)), 0, false),
            (2, page(50, None), 0, false),
            (3, page(50, t), 1, false),
            (11, page(0, t), 1, false),
            (10, page(49, t), 0, false),
            (2, page(0, t), 0, false),
        ];
        for (number, facts, seen, fits_) in table {
            assert_eq!(
                fits(number, 11, t, facts, seen),
                fits_,
                "page {number}: {facts:?}, {seen} seen"
            );
        }
        assert!(fits(1, 1, None, page(3, None), 0), "no total on either");
    }

    #[tokio::test(start_paused = true)]
    async fn pages_read_ahead_come_in_order_whatever_order_they_end_in() {
        use std::time::Duration;
        let started = tokio::time::Instant::now();
        // Page n takes (12 - n) × 10 ms: the later pages end first.
        let mut ahead = ReadAhead::new(2, 11, |n| async move {
            tokio::time::sleep(Duration::from_millis((12 - n) * 10)).await;
            (n, tokio::time::Instant::now() - started)
        });
        let mut got = Vec::new();
        while let Some((n, _)) = ahead.next().await {
            got.push(n);
        }
        assert_eq!(got, (2..=11).collect::<Vec<_>>());
        // Eight at once: pages 2 to 9 together (100 ms for page 2), then 10 and 11.
        assert!(
            started.elapsed() <= Duration::from_millis(120),
            "{:?}",
            started.elapsed()
        );
        assert!(ahead.next().await.is_none(), "none past the last");
        let mut none = ReadAhead::new(2, 1, |n| async move { n });
        assert!(none.next().await.is_none(), "nothing to read ahead");
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_eight_pages_are_under_way() {
        let out = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut ahead = ReadAhead::new(2, 40, |n| {
            let (out, most) = (out.clone(), most.clone());
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = out.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                out.fetch_sub(1, SeqCst);
                n
            }
        });
        let mut count = 0;
        while ahead.next().await.is_some() {
            count += 1;
        }
        assert_eq!(count, 39);
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), READ_AHEAD);
    }

    #[test]
    fn warnings_say_what_happened() {
        let said = [
            (
                ListingWarning::NoNewIds { page: 3 },
                "page 3 of the listing brought no identity not already seen; stopped paging",
            ),
            (
                ListingWarning::TooManyPages { pages: 12 },
                "the listing was still going after 12 pages, far past its total; stopped paging",
            ),
            (
                ListingWarning::Malformed { items: 2 },
                "2 listing items had no readable id and were skipped",
            ),
            (
                ListingWarning::CountMismatch {
                    total: 50,
                    read: 130,
                },
                "the listing announced 50 identities but 130 distinct ones were read",
            ),
            (
                ListingWarning::NoTotal,
                "the listing did not say how many identities it holds",
            ),
        ];
        for (warning, text) in said {
            assert_eq!(warning.to_string(), text);
        }
    }

    #[test]
    fn malformed_items_are_counted_and_a_total_that_grows_is_honoured() {
        let mut reader = ListingReader::default();
        let read = read_all(&mut reader, |p| match p {
            1 => PageFacts {
                items: 50,
                new_ids: 49,
                malformed: 1,
                total: Some(60),
            },
            _ => PageFacts {
                items: 11,
                new_ids: 11,
                malformed: 0,
                total: Some(61),
            },
        });
        assert_eq!(read, 2);
        assert_eq!(
            reader.warnings(),
            [
                ListingWarning::Malformed { items: 1 },
                ListingWarning::CountMismatch {
                    total: 61,
                    read: 60
                }
            ]
        );
    }
}
