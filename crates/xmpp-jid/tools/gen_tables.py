#!/usr/bin/env python3
"""Generate crates/xmpp-jid/src/tables.rs from the Unicode Character Database.

Usage: python3 crates/xmpp-jid/tools/gen_tables.py [UCD_DIR] > crates/xmpp-jid/src/tables.rs

UCD_DIR defaults to /usr/share/unicode (Debian/Ubuntu package `unicode-data`). The script uses
only the UCD text files (never Python's own `unicodedata` module), so the output depends only on
the UCD version it reads, which it writes into the generated file.

Derived properties:
  * PRECIS (RFC 8264 section 8/9): PVALID, FREE_PVAL (= ID_DIS in IdentifierClass), CONTEXTJ,
    CONTEXTO, DISALLOWED, UNASSIGNED.
  * IDNA2008 (RFC 5892 section 3/2): PVALID, CONTEXTJ, CONTEXTO, DISALLOWED, UNASSIGNED.
  * Bidi_Class, Joining_Type, Canonical_Combining_Class == Virama, the scripts the CONTEXTO
    rules need (Greek, Hebrew, Hiragana/Katakana/Han), General_Category M* and Zs.
  * The width mapping of RFC 8265: <wide>/<narrow> decompositions.
"""
import os
import re
import sys

UCD = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
N = 0x110000


def path(name):
    return os.path.join(UCD, name)


def records(name):
    with open(path(name), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [x.strip() for x in line.split(";")]
            r = fields[0]
            if ".." in r:
                a, b = r.split("..")
                yield int(a, 16), int(b, 16), fields[1:]
            else:
                v = int(r, 16)
                yield v, v, fields[1:]


def version():
    with open(path("DerivedAge.txt"), encoding="utf-8") as f:
        m = re.search(r"DerivedAge-(\d+\.\d+\.\d+)\.txt", f.readline())
    return m.group(1)


# UnicodeData.txt: general category, ccc, decompositions (with First/Last ranges).
gc = ["Cn"] * N
ccc = [0] * N
decomp = {}
with open(path("UnicodeData.txt"), encoding="utf-8") as f:
    first = None
    for line in f:
        p = line.rstrip("\n").split(";")
        cp = int(p[0], 16)
        if p[1].endswith(", First>"):
            first = cp
            continue
        lo = first if p[1].endswith(", Last>") else cp
        first = None
        for c in range(lo, cp + 1):
            gc[c] = p[2]
            ccc[c] = int(p[3])
        if p[5]:
            decomp[cp] = p[5]


def prop_set(name, prop):
    s = set()
    for a, b, f in records(name):
        if f[0] == prop:
            s.update(range(a, b + 1))
    return s


default_ignorable = prop_set("DerivedCoreProperties.txt", "Default_Ignorable_Code_Point")
noncharacter = prop_set("PropList.txt", "Noncharacter_Code_Point")
join_control = prop_set("PropList.txt", "Join_Control")
white_space = prop_set("PropList.txt", "White_Space")
cwkcf = prop_set("DerivedNormalizationProps.txt", "Changes_When_NFKC_Casefolded")
# HasCompat (RFC 8264 9.17): toNFKC(cp) != cp. A single code point is changed by NFKC exactly
# when its NFKC_Quick_Check is No (Maybe code points are unchanged on their own).
has_compat = set()
for a, b, f in records("DerivedNormalizationProps.txt"):
    if f[0] == "NFKC_QC" and f[1] == "N":
        has_compat.update(range(a, b + 1))
nfc_qc_not_yes = set()
for a, b, f in records("DerivedNormalizationProps.txt"):
    if f[0] == "NFC_QC" and f[1] in ("N", "M"):
        nfc_qc_not_yes.update(range(a, b + 1))
old_hangul_jamo = set()
for a, b, f in records("HangulSyllableType.txt"):
    if f[0] in ("L", "V", "T"):
        old_hangul_jamo.update(range(a, b + 1))
ignorable_blocks = set()
for a, b, f in records("Blocks.txt"):
    if f[0] in (
        "Combining Diacritical Marks for Symbols",
        "Musical Symbols",
        "Ancient Greek Musical Notation",
    ):
        ignorable_blocks.update(range(a, b + 1))

BIDI = {n: i for i, n in enumerate(["L", "R", "AL", "AN", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"])}
bidi = [11] * N
for a, b, f in records("extracted/DerivedBidiClass.txt"):
    v = BIDI.get(f[0], 11)
    for c in range(a, b + 1):
        bidi[c] = v

JT = {"L": 1, "R": 2, "D": 3, "T": 4, "C": 5}
joining = [0] * N
for a, b, f in records("extracted/DerivedJoiningType.txt"):
    v = JT.get(f[0], 0)
    for c in range(a, b + 1):
        joining[c] = v

SCRIPT = {"Greek": 1, "Hebrew": 2, "Hiragana": 3, "Katakana": 3, "Han": 3}
script = [0] * N
for a, b, f in records("Scripts.txt"):
    v = SCRIPT.get(f[0], 0)
    for c in range(a, b + 1):
        script[c] = v

PVALID, FREE_PVAL, CONTEXTJ, CONTEXTO, DISALLOWED, UNASSIGNED = range(6)

# RFC 5892 section 2.6 (shared by RFC 8264 section 9.6).
EXCEPTIONS = {
    0x00DF: PVALID, 0x03C2: PVALID, 0x06FD: PVALID, 0x06FE: PVALID, 0x0F0B: PVALID,
    0x3007: PVALID,
    0x00B7: CONTEXTO, 0x0375: CONTEXTO, 0x05F3: CONTEXTO, 0x05F4: CONTEXTO, 0x30FB: CONTEXTO,
    0x0640: DISALLOWED, 0x07FA: DISALLOWED, 0x302E: DISALLOWED, 0x302F: DISALLOWED,
    0x303B: DISALLOWED,
}
for c in range(0x0660, 0x066A):
    EXCEPTIONS[c] = CONTEXTO
for c in range(0x06F0, 0x06FA):
    EXCEPTIONS[c] = CONTEXTO
for c in range(0x3031, 0x3036):
    EXCEPTIONS[c] = DISALLOWED

LETTER_DIGITS = {"Ll", "Lu", "Lo", "Nd", "Lm", "Mn", "Mc"}
OTHER_LETTER_DIGITS = {"Lt", "Nl", "No", "Me"}
SYMBOLS = {"Sm", "Sc", "Sk", "So"}
PUNCTUATION = {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"}


def unassigned(c):
    return gc[c] == "Cn" and c not in noncharacter


def precis_class(c):
    """RFC 8264 section 8."""
    if c in EXCEPTIONS:
        return EXCEPTIONS[c]
    if unassigned(c):
        return UNASSIGNED
    if 0x21 <= c <= 0x7E:
        return PVALID
    if c in join_control:
        return CONTEXTJ
    if c in old_hangul_jamo:
        return DISALLOWED
    if c in default_ignorable or c in noncharacter:
        return DISALLOWED
    if gc[c] == "Cc":
        return DISALLOWED
    if c in has_compat:
        return FREE_PVAL
    if gc[c] in LETTER_DIGITS:
        return PVALID
    if gc[c] in OTHER_LETTER_DIGITS or gc[c] == "Zs" or gc[c] in SYMBOLS or gc[c] in PUNCTUATION:
        return FREE_PVAL
    return DISALLOWED


def idna_class(c):
    """RFC 5892 section 3."""
    if c in EXCEPTIONS:
        return EXCEPTIONS[c]
    if unassigned(c):
        return UNASSIGNED
    if c == 0x2D or 0x30 <= c <= 0x39 or 0x61 <= c <= 0x7A:
        return PVALID
    if c in join_control:
        return CONTEXTJ
    if c in cwkcf:
        return DISALLOWED
    if c in default_ignorable or c in white_space or c in noncharacter:
        return DISALLOWED
    if c in ignorable_blocks:
        return DISALLOWED
    if c in old_hangul_jamo:
        return DISALLOWED
    if gc[c] in LETTER_DIGITS:
        return PVALID
    return DISALLOWED


def packed(c):
    return (
        precis_class(c)
        | idna_class(c) << 3
        | bidi[c] << 6
        | joining[c] << 10
        | (ccc[c] == 9) << 13
        | script[c] << 14
        | (gc[c] in ("Mn", "Mc", "Me")) << 16
        | (gc[c] == "Zs") << 17
        | (c in nfc_qc_not_yes or ccc[c] != 0) << 18
    )


# Two-level lookup: BLOCK_INDEX[cp >> SHIFT] picks a block of 2^SHIFT byte indices into
# VALUES. Identical blocks are stored once.
SHIFT = 7
BLOCK = 1 << SHIFT
values = sorted({packed(c) for c in range(N)})
value_index = {v: i for i, v in enumerate(values)}
assert len(values) <= 256, "values must fit u8 indices"
blocks = {}
block_index = []
for b in range(0, N, BLOCK):
    key = tuple(value_index[packed(c)] for c in range(b, b + BLOCK))
    block_index.append(blocks.setdefault(key, len(blocks)))
index_type = "u8" if len(blocks) <= 256 else "u16"
width = []
for c, d in sorted(decomp.items()):
    m = re.fullmatch(r"<(wide|narrow)> ([0-9A-F]+)", d)
    if m:
        width.append((c, int(m.group(2), 16)))
assert all(0x3000 <= c <= 0xFFEE for c, _ in width), "props.rs assumes this range"

ver = version()
out = sys.stdout
zs = [c for c in range(N) if gc[c] == "Zs"]

out.write(f"""//! Generated by `tools/gen_tables.py` from the Unicode Character Database {ver}.
//! Do not edit: rerun the generator (see the crate README).
//!
//! Property lookup: `VALUES[BLOCKS[BLOCK_INDEX[cp >> SHIFT] * 2^SHIFT + (cp & (2^SHIFT - 1))]]`.
//! Each value is packed as: bits 0-2 PRECIS class (RFC 8264 §8), bits 3-5 IDNA2008 class
//! (RFC 5892 §3) (0 PVALID, 1 FREE_PVAL/ID_DIS, 2 CONTEXTJ, 3 CONTEXTO, 4 DISALLOWED,
//! 5 UNASSIGNED); bits 6-9 Bidi_Class (L R AL AN EN ES CS ET ON BN NSM, 11 other); bits 10-12
//! Joining_Type (U L R D T C); bit 13 Canonical_Combining_Class = Virama; bits 14-15 script
//! (other, Greek, Hebrew, Hiragana/Katakana/Han); bit 16 General_Category M*; bit 17 Zs;
//! bit 18 NFC_Quick_Check is not Yes or Canonical_Combining_Class is not 0.

/// The Unicode version the tables were generated from.
pub(crate) const UNICODE_VERSION: (u8, u8, u8) = ({ver.replace('.', ', ')});

/// Bits of the code point that select the entry within a block.
pub(crate) const SHIFT: u32 = {SHIFT};

/// Distinct packed property values.
#[rustfmt::skip]
#[allow(clippy::unreadable_literal)]
pub(crate) static VALUES: [u32; {len(values)}] = [
""")
for i in range(0, len(values), 8):
    out.write("    " + " ".join(f"0x{v:X}," for v in values[i:i + 8]) + "\n")
out.write(f"""];

/// Block number of each run of 2^SHIFT code points.
#[rustfmt::skip]
pub(crate) static BLOCK_INDEX: [{index_type}; {len(block_index)}] = [
""")
for i in range(0, len(block_index), 24):
    out.write("    " + " ".join(f"{v}," for v in block_index[i:i + 24]) + "\n")
out.write(f"""];

/// The distinct blocks, concatenated: indices into `VALUES`.
#[rustfmt::skip]
pub(crate) static BLOCKS: [u8; {len(blocks) * BLOCK}] = [
""")
flat = [v for blk in blocks for v in blk]
for i in range(0, len(flat), 32):
    out.write("    " + " ".join(f"{v}," for v in flat[i:i + 32]) + "\n")
out.write("""];

/// Width mapping (RFC 8265 §3.4.1): `<wide>`/`<narrow>` code point to its decomposition.
#[rustfmt::skip]
#[allow(clippy::unreadable_literal)]
pub(crate) static WIDTH: &[(u32, u32)] = &[
""")
for i in range(0, len(width), 6):
    out.write("    " + " ".join(f"(0x{a:X}, 0x{v:X})," for a, v in width[i:i + 6]) + "\n")
out.write("];\n")
zs_list = ", ".join("'\\u{%X}'" % c for c in zs)
out.write(f"""
/// General_Category Zs (space separators), for the OpaqueString and nickname space mapping.
#[rustfmt::skip]
#[allow(dead_code)] // kept for reference and tests; lookups use the Zs bit of `VALUES`
pub(crate) static SPACES: [char; {len(zs)}] = [{zs_list}];
""")
