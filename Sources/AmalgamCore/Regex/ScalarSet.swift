/// A set of Unicode scalars as a regex class describes it: ranges, properties, nested classes and
/// intersections, possibly negated and case-insensitive. ASCII membership is a bitmap built once.
struct ScalarSet: Sendable {
    indirect enum Item: Sendable {
        case range(UInt32, UInt32)
        case property(UnicodeProperty, negated: Bool)
        case nested(ScalarSet)
        case intersection(ScalarSet, ScalarSet)
    }

    let items: [Item]
    let negated: Bool
    let ignoreCase: Bool
    private var ascii: (UInt64, UInt64) = (0, 0)

    init(items: [Item], negated: Bool, ignoreCase: Bool) {
        self.items = items
        self.negated = negated
        self.ignoreCase = ignoreCase
        var bits: (UInt64, UInt64) = (0, 0)
        for v in UInt32(0)..<128 where slowContains(v) {
            if v < 64 { bits.0 |= 1 << UInt64(v) } else { bits.1 |= 1 << UInt64(v - 64) }
        }
        ascii = bits
    }

    @inline(__always)
    func contains(_ v: UInt32) -> Bool {
        if v < 64 { return ascii.0 & (1 << UInt64(v)) != 0 }
        if v < 128 { return ascii.1 & (1 << UInt64(v - 64)) != 0 }
        return slowContains(v)
    }

    private func slowContains(_ v: UInt32) -> Bool {
        var hit = rawContains(v)
        if !hit, ignoreCase {
            hit = caseVariants(v).contains { $0 != v && rawContains($0) }
        }
        return hit != negated
    }

    private func rawContains(_ v: UInt32) -> Bool {
        for item in items {
            switch item {
            case let .range(lo, hi): if v >= lo && v <= hi { return true }
            case let .property(p, negated): if p.contains(v) != negated { return true }
            case let .nested(set): if set.contains(v) { return true }
            case let .intersection(a, b): if a.contains(v) && b.contains(v) { return true }
            }
        }
        return false
    }
}

/// The simple case fold of a scalar: its single-scalar uppercase, then that one's single-scalar lowercase
/// ("ſ" → "S" → "s", KELVIN SIGN → "k"), as near as Swift's properties come to Unicode's CaseFolding.txt.
func caseFold(_ v: UInt32) -> UInt32 {
    guard let s = Unicode.Scalar(v) else { return v }
    if v < 128 { return v >= 65 && v <= 90 ? v | 0x20 : v }
    let upper = single(s.properties.uppercaseMapping) ?? s
    return (single(upper.properties.lowercaseMapping) ?? upper).value
}

/// The scalar itself, its fold, and its single-scalar lower, upper and title case mappings.
func caseVariants(_ v: UInt32) -> [UInt32] {
    guard let s = Unicode.Scalar(v) else { return [v] }
    let p = s.properties
    return [v, caseFold(v)] + [p.lowercaseMapping, p.uppercaseMapping, p.titlecaseMapping].compactMap { single($0)?.value }
}

private func single(_ text: String) -> Unicode.Scalar? {
    let scalars = text.unicodeScalars
    return scalars.count == 1 ? scalars.first : nil
}
