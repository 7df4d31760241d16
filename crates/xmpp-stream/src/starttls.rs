//! STARTTLS (RFC 6120 §5): the three elements both roles exchange. The decision logic lives
//! in the role files; this module only builds and recognizes elements.

use minidom::Element;

use crate::features::ns;

/// The elements of the STARTTLS exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsElement {
    StartTls,
    Proceed,
    Failure,
}

impl TlsElement {
    const fn name(self) -> &'static str {
        match self {
            TlsElement::StartTls => "starttls",
            TlsElement::Proceed => "proceed",
            TlsElement::Failure => "failure",
        }
    }

    pub(crate) fn parse(element: &Element) -> Option<TlsElement> {
        if !element.has_ns(ns::TLS) {
            return None;
        }
        [
            TlsElement::StartTls,
            TlsElement::Proceed,
            TlsElement::Failure,
        ]
        .into_iter()
        .find(|kind| element.name() == kind.name())
    }

    pub(crate) fn to_element(self) -> Element {
        Element::bare(self.name(), ns::TLS)
    }
}
