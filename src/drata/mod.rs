//! Drata's public API as this tool uses it: the HTTP client, what the wire carries,
//! the current state read from the listing, and the CA certificates the client trusts.

mod certinfo;
mod client;
mod roots;
mod state;
mod tls;
mod wire;

pub(crate) use client::{
    ApiClient, Cause, ClientOptions, EvidenceForm, EvidenceItem, Failure, PAGE_LIMIT,
};
pub(crate) use roots::{roots_from_env, Roots};
pub(crate) use state::{Added, Current, CurrentState, Users};
pub(crate) use tls::read_ca_bundle;
pub(crate) use tls::CaFileError;
#[cfg(test)]
pub(crate) use tls::CertProblem;
pub(crate) use wire::{Identity, Page, UserPage};

use std::net::IpAddr;

use reqwest::Url;

/// True for 127.0.0.0/8, ::1 and `localhost`: the only hosts plain http may reach.
pub(crate) fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}
