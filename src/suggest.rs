//! Why an identity that is not marked looks like a service account: a pure function of
//! what the listing says about it, for the `suggestion` column of `export`. A suggestion
//! is a hint for the reviewer, never a decision: nothing applies it.
//!
//! The rules (`docs/export.md`, "Suggestions"): a name with a word of automation in it,
//! or a connection whose other identities are all service accounts, is a strong clue;
//! no linked Drata user and no email are weak clues, which make a suggestion only
//! together. Every clue present is given, so the reviewer sees why.

/// Words that name automation when they stand as a word of a username or of an email's
/// local part (`svc-deploy-7`, `deployBot`, `ci_runner`), never inside another word
/// (`lucia` has no `ci`).
pub(crate) const AUTOMATION_WORDS: [&str; 19] = [
    "svc",
    "bot",
    "robot",
    "ci",
    "deploy",
    "deployer",
    "terraform",
    "backup",
    "monitor",
    "monitoring",
    "integration",
    "automation",
    "jenkins",
    "runner",
    "pipeline",
    "cron",
    "service",
    "sync",
    "scanner",
];

/// Names of several words, matched as adjacent words (`github-actions`, `GitHubActions`),
/// and the word they are given as.
pub(crate) const AUTOMATION_PHRASES: [(&[&str], &str); 3] = [
    (&["github", "actions"], "github-actions"),
    (&["git", "hub", "actions"], "github-actions"),
    (&["gh", "actions"], "gh-actions"),
];

/// The least number of other identities on a connection, all marked, that makes the
/// connection a clue: one or two marked neighbours say little.
pub(crate) const CONNECTION_PEERS_MIN: u64 = 3;

/// What the listing says about one identity's connection, apart from the identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Peers {
    /// Other identities of the same connection.
    pub others: u64,
    /// How many of them are marked as service accounts.
    pub marked: u64,
}

/// What a suggestion is made from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IdentityFacts<'a> {
    /// Already a service account: nothing to suggest.
    pub marked: bool,
    pub username: Option<&'a str>,
    pub email: Option<&'a str>,
    /// True when the identity is linked to a Drata user (a person).
    pub linked_user: bool,
    pub peers: Peers,
}

/// One reason why an identity looks like a service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Clue {
    NoLinkedUser,
    NoEmail,
    /// Automation words found in the username or the email's local part, in order.
    Name(Vec<&'static str>),
    /// Every other identity of the connection (this many) is a service account.
    ConnectionAllMarked {
        others: u64,
    },
}

impl Clue {
    fn is_strong(&self) -> bool {
        matches!(self, Clue::Name(_) | Clue::ConnectionAllMarked { .. })
    }
}

/// The clues behind a suggestion, in a fixed order: linked user, email, name, connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Suggestion {
    pub clues: Vec<Clue>,
}

/// Suggests marking an identity that is not marked, when a strong clue or both weak
/// clues are present.
pub(crate) fn suggest(facts: &IdentityFacts<'_>) -> Option<Suggestion> {
    if facts.marked {
        return None;
    }
    let mut clues = Vec::new();
    if !facts.linked_user {
        clues.push(Clue::NoLinkedUser);
    }
    let email = facts.email.map(str::trim).filter(|e| !e.is_empty());
    if email.is_none() {
        clues.push(Clue::NoEmail);
    }
    let mut words = Vec::new();
    let local_part = email.map(|e| e.split('@').next().unwrap_or(e));
    for name in [facts.username, local_part].into_iter().flatten() {
        for word in automation_words(name) {
            if !words.contains(&word) {
                words.push(word);
            }
        }
    }
    if !words.is_empty() {
        clues.push(Clue::Name(words));
    }
    let peers = facts.peers;
    if peers.others >= CONNECTION_PEERS_MIN && peers.marked == peers.others {
        clues.push(Clue::ConnectionAllMarked {
            others: peers.others,
        });
    }
    let strong = clues.iter().any(Clue::is_strong);
    let both_weak = clues.contains(&Clue::NoLinkedUser) && clues.contains(&Clue::NoEmail);
    (strong || both_weak).then_some(Suggestion { clues })
}

/// The words of a name, lowercase: split at anything not a letter or digit, between
/// letters and digits, and before an upper-case letter that follows a lower-case one.
pub(crate) fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        let boundary = match previous {
            None => false,
            Some(p) => {
                !c.is_alphanumeric()
                    || (p.is_alphabetic() != c.is_alphabetic())
                    || (p.is_lowercase() && c.is_uppercase())
            }
        };
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
            previous = Some(c);
        } else {
            previous = None;
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The automation words a name holds as words, in order of appearance.
fn automation_words(name: &str) -> Vec<&'static str> {
    let words = words(name);
    let mut found = Vec::new();
    for (index, word) in words.iter().enumerate() {
        if let Some(known) = AUTOMATION_WORDS.iter().find(|known| **known == word) {
            found.push(*known);
        }
        for (phrase, given) in AUTOMATION_PHRASES {
            let here = words.get(index..index + phrase.len());
            if here.is_some_and(|here| here.iter().zip(phrase).all(|(w, p)| w == p)) {
                found.push(given);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person<'a>(username: &'a str, email: &'a str) -> IdentityFacts<'a> {
        IdentityFacts {
            marked: false,
            username: Some(username),
            email: Some(email),
            linked_user: true,
            peers: Peers::default(),
        }
    }

    #[test]
    fn words_split_at_punctuation_digits_and_case() {
        assert_eq!(words("svc-deploy-7"), ["svc", "deploy", "7"]);
        assert_eq!(words("deployBot"), ["deploy", "bot"]);
        assert_eq!(words("CI_runner01"), ["ci", "runner", "01"]);
        assert_eq!(words("GitHubActions"), ["git", "hub", "actions"]);
        assert_eq!(words("lucia.garcia"), ["lucia", "garcia"]);
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words("--"), Vec::<String>::new());
    }

    #[test]
    fn the_rules_as_a_table() {
        use Clue::*;
        let unlinked = |username: &'static str, email: Option<&'static str>| IdentityFacts {
            marked: false,
            username: Some(username),
            email,
            linked_user: false,
            peers: Peers::default(),
        };
        let cases: Vec<(IdentityFacts<'_>, Option<Vec<Clue>>)> = vec![
            // People: nothing to say.
            (person("lucia.garcia", "lucia@example.com"), None),
            (person("marci", "marci@example.com"), None),
            (person("botond.kiss", "botond@example.com"), None),
            (person("cinzia", "cinzia@example.com"), None),
            (person("deployment.lead", "dl@example.com"), None),
            // One weak clue alone is not enough.
            (unlinked("dana.tanaka", Some("dana@example.com")), None),
            (
                IdentityFacts {
                    email: None,
                    ..person("dana.tanaka", "")
                },
                None,
            ),
            // Both weak clues.
            (
                unlinked("dana.tanaka", None),
                Some(vec![NoLinkedUser, NoEmail]),
            ),
            (
                unlinked("dana.tanaka", Some("  ")),
                Some(vec![NoLinkedUser, NoEmail]),
            ),
            // A name alone is enough; every clue present is given.
            (
                person("svc-deploy-7", "ops@example.com"),
                Some(vec![Name(vec!["svc", "deploy"])]),
            ),
            (
                unlinked("deploy-bot", None),
                Some(vec![NoLinkedUser, NoEmail, Name(vec!["deploy", "bot"])]),
            ),
            (
                unlinked("ci", Some("x@example.com")),
                Some(vec![NoLinkedUser, Name(vec!["ci"])]),
            ),
            (
                person("ops", "terraform-state@example.com"),
                Some(vec![Name(vec!["terraform"])]),
            ),
            (
                person("GitHubActions", "x@example.com"),
                Some(vec![Name(vec!["github-actions"])]),
            ),
            (
                person("github-actions[bot]", "x@example.com"),
                Some(vec![Name(vec!["github-actions", "bot"])]),
            ),
            (
                person("jenkins2", "x@example.com"),
                Some(vec![Name(vec!["jenkins"])]),
            ),
        ];
        for (facts, expected) in cases {
            let got = suggest(&facts).map(|s| s.clues);
            assert_eq!(got, expected, "{facts:?}");
        }
    }

    #[test]
    fn a_connection_of_service_accounts_is_a_clue_from_three_peers() {
        let on = |others, marked| IdentityFacts {
            peers: Peers { others, marked },
            ..person("dana.tanaka", "dana@example.com")
        };
        assert_eq!(
            suggest(&on(3, 3)).map(|s| s.clues),
            Some(vec![Clue::ConnectionAllMarked { others: 3 }])
        );
        assert_eq!(suggest(&on(2, 2)), None);
        assert_eq!(suggest(&on(10, 9)), None);
        assert_eq!(suggest(&on(0, 0)), None);
    }

    #[test]
    fn marked_identities_get_no_suggestion() {
        let facts = IdentityFacts {
            marked: true,
            username: Some("svc-deploy"),
            email: None,
            linked_user: false,
            peers: Peers {
                others: 5,
                marked: 5,
            },
        };
        assert_eq!(suggest(&facts), None);
    }
}
