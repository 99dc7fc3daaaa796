/// A Unicode property a regex can test, as Oniguruma defines it for UTF-8 patterns: general categories
/// from Swift's `Unicode.Scalar.Properties`, `\s` as White_Space, `\w` as Alphabetic + marks + numbers + Pc,
/// scripts from the generated `unicodeScriptRanges`.
public enum UnicodeProperty: Sendable {
    case categories(Set<Unicode.GeneralCategory>)
    case decimalNumber, whitespace, word, hexDigit, alphabetic, uppercase, lowercase, any, ascii, assigned
    /// `[:alnum:]`, `[:punct:]` (P and S, as the Oniguruma of tokenizers 0.23 matches it), `[:blank:]`.
    case alnum, posixPunct, blank
    case script([ClosedRange<UInt32>])

    func contains(_ v: UInt32) -> Bool {
        guard let s = Unicode.Scalar(v) else { return false }
        let p = s.properties
        if isNewerThanOniguruma(p) {
            switch self {
            case let .categories(set): return set.contains(.unassigned)
            case .any: return true
            case let .script(ranges): return ranges.contains { $0.contains(v) }
            default: return false
            }
        }
        switch self {
        case let .categories(set): return set.contains(p.generalCategory)
        case .decimalNumber: return p.generalCategory == .decimalNumber
        case .whitespace: return p.isWhitespace
        case .word: return isWordScalar(s)
        case .hexDigit: return (0x30...0x39).contains(v) || (0x41...0x46).contains(v) || (0x61...0x66).contains(v)
        case .alphabetic: return p.isAlphabetic
        case .uppercase: return p.isUppercase
        case .lowercase: return p.isLowercase
        case .any: return true
        case .ascii: return v < 128
        case .assigned: return p.generalCategory != .unassigned
        case .alnum: return p.isAlphabetic || p.generalCategory == .decimalNumber
        case .posixPunct:
            return UnicodeProperty.punctuation.contains(p.generalCategory) || UnicodeProperty.symbols.contains(p.generalCategory)
        case .blank: return v == 0x09 || p.generalCategory == .spaceSeparator
        case let .script(ranges):
            var lo = 0, hi = ranges.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if ranges[mid].upperBound < v { lo = mid + 1 } else { hi = mid }
            }
            return lo < ranges.count && ranges[lo].contains(v)
        }
    }

    static let letters: Set<Unicode.GeneralCategory> = [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter]
    public static let marks: Set<Unicode.GeneralCategory> = [.nonspacingMark, .spacingMark, .enclosingMark]
    static let numbers: Set<Unicode.GeneralCategory> = [.decimalNumber, .letterNumber, .otherNumber]
    public static let punctuation: Set<Unicode.GeneralCategory> = [.connectorPunctuation, .dashPunctuation, .openPunctuation,
                                                             .closePunctuation, .initialPunctuation, .finalPunctuation, .otherPunctuation]
    static let symbols: Set<Unicode.GeneralCategory> = [.mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol]
    static let separators: Set<Unicode.GeneralCategory> = [.spaceSeparator, .lineSeparator, .paragraphSeparator]
    static let others: Set<Unicode.GeneralCategory> = [.control, .format, .privateUse, .surrogate, .unassigned]

    /// General category names, short and long, as `\p{…}` accepts them (lowercased, without `_`, `-`, spaces).
    private static let categoryNames: [String: Set<Unicode.GeneralCategory>] = {
        var t: [String: Set<Unicode.GeneralCategory>] = [
            "l": letters, "letter": letters, "m": marks, "mark": marks, "combiningmark": marks,
            "n": numbers, "number": numbers, "p": punctuation, "punctuation": punctuation,
            "s": symbols, "symbol": symbols, "z": separators, "separator": separators, "c": others, "other": others,
            "lc": [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter],
            "l&": [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter],
            "casedletter": [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter],
        ]
        let single: [(String, String, Unicode.GeneralCategory)] = [
            ("lu", "uppercaseletter", .uppercaseLetter), ("ll", "lowercaseletter", .lowercaseLetter),
            ("lt", "titlecaseletter", .titlecaseLetter), ("lm", "modifierletter", .modifierLetter),
            ("lo", "otherletter", .otherLetter), ("mn", "nonspacingmark", .nonspacingMark),
            ("mc", "spacingmark", .spacingMark), ("me", "enclosingmark", .enclosingMark),
            ("nd", "decimalnumber", .decimalNumber), ("nl", "letternumber", .letterNumber),
            ("no", "othernumber", .otherNumber), ("pc", "connectorpunctuation", .connectorPunctuation),
            ("pd", "dashpunctuation", .dashPunctuation), ("ps", "openpunctuation", .openPunctuation),
            ("pe", "closepunctuation", .closePunctuation), ("pi", "initialpunctuation", .initialPunctuation),
            ("pf", "finalpunctuation", .finalPunctuation), ("po", "otherpunctuation", .otherPunctuation),
            ("sm", "mathsymbol", .mathSymbol), ("sc", "currencysymbol", .currencySymbol),
            ("sk", "modifiersymbol", .modifierSymbol), ("so", "othersymbol", .otherSymbol),
            ("zs", "spaceseparator", .spaceSeparator), ("zl", "lineseparator", .lineSeparator),
            ("zp", "paragraphseparator", .paragraphSeparator), ("cc", "control", .control),
            ("cf", "format", .format), ("co", "privateuse", .privateUse), ("cs", "surrogate", .surrogate),
            ("cn", "unassigned", .unassigned),
        ]
        for (short, long, category) in single { t[short] = [category]; t[long] = [category] }
        return t
    }()

    /// The property `\p{name}` names (case, spaces, `_` and `-` ignored, as Oniguruma does), or nil.
    init?(name: String) {
        var key = String(name.lowercased().filter { $0 != " " && $0 != "_" && $0 != "-" })
        for prefix in ["generalcategory=", "gc=", "script=", "sc="] where key.hasPrefix(prefix) { key.removeFirst(prefix.count) }
        if let set = UnicodeProperty.categoryNames[key] {
            self = .categories(set)
            return
        }
        switch key {
        case "alpha", "alphabetic": self = .alphabetic
        case "digit": self = .decimalNumber
        case "space", "whitespace": self = .whitespace
        case "word": self = .word
        case "upper", "uppercase": self = .uppercase
        case "lower", "lowercase": self = .lowercase
        case "any": self = .any
        case "ascii": self = .ascii
        case "assigned": self = .assigned
        case "alnum": self = .alnum
        case "punct": self = .posixPunct
        case "blank": self = .blank
        case "xdigit": self = .hexDigit
        default:
            guard let ranges = unicodeScriptRanges[key] else { return nil }
            self = .script(ranges)
        }
    }

    /// The property of a POSIX bracket `[:name:]`, or nil for names Amalgam does not define.
    init?(posixName: String) {
        switch posixName {
        case "alpha", "digit", "space", "word", "upper", "lower", "alnum", "punct", "blank", "xdigit", "ascii":
            self.init(name: posixName)
        case "cntrl": self = .categories([.control])
        default: return nil
        }
    }
}

/// Oniguruma's `\w` for Unicode as tokenizers' build matches it: Alphabetic, marks, every number (`½` and
/// `²` too) and connector punctuation; not the joiners Rust's regex adds.
func isWordScalar(_ s: Unicode.Scalar) -> Bool {
    let p = s.properties
    if isNewerThanOniguruma(p) { return false }
    if p.isAlphabetic { return true }
    switch p.generalCategory {
    case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber, .otherNumber, .connectorPunctuation: return true
    default: return false
    }
}

/// Whether a scalar was assigned after Unicode 16.0, the version of the Oniguruma tables in tokenizers
/// 0.23: Oniguruma sees it as unassigned (`\p{Cn}`), so the engine does too.
func isNewerThanOniguruma(_ p: Unicode.Scalar.Properties) -> Bool {
    guard let age = p.age else { return false }
    return age.major > 16
}
