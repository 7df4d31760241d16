//! Bounds on everything a peer controls in the XML stream.

/// Bounds the parser enforces on peer input. Exceeding any of them is a
/// [`policy-violation`](crate::StreamErrorCondition::PolicyViolation) stream error.
///
/// The defaults are safe for a public server or client: they admit every stanza real
/// deployments send (common servers cap stanzas at 256 KiB too) and keep a hostile peer's
/// cost per connection small and linear in what it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Bytes of one depth-1 element (a stanza or negotiation element) as sent on the wire,
    /// from its `<` to the end of its closing tag. Also bounds the stream header and any run
    /// of bytes the parser must hold before it can emit an event. Default 256 KiB.
    pub max_stanza_bytes: usize,
    /// Element nesting depth below the stream element (a stanza is depth 1). Default 64.
    pub max_depth: usize,
    /// Attributes on one element, not counting namespace declarations. Default 64.
    pub max_attributes: usize,
    /// Namespace declarations (`xmlns`, `xmlns:p`) on one element. Default 16.
    pub max_namespace_declarations: usize,
    /// Bytes of an element or attribute name, prefix included. Default 1 KiB.
    pub max_name_length: usize,
    /// Bytes of one attribute value after reference expansion. Default 8 KiB.
    pub max_attribute_value_length: usize,
    /// Bytes of character data directly inside one element. Default 256 KiB.
    pub max_text_length: usize,
    /// Elements in one depth-1 element, itself included. Default 8 192. A parsed element
    /// costs a few hundred bytes of heap however short its markup (`<a/>` is 4 bytes), so
    /// this bound, not only the byte bound, keeps one stanza's tree to a few MiB. A 256 KiB
    /// roster result of short items holds about 4 000 elements.
    pub max_elements: usize,
}

impl Limits {
    /// The default limits (see each field).
    pub const DEFAULT: Limits = Limits {
        max_stanza_bytes: 256 * 1024,
        max_depth: 64,
        max_attributes: 64,
        max_namespace_declarations: 16,
        max_name_length: 1024,
        max_attribute_value_length: 8 * 1024,
        max_text_length: 256 * 1024,
        max_elements: 8 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
