/// Why a chat template could not be compiled or rendered: the template's origin (a file and key), the
/// line in the template, and what went wrong.
public struct JinjaError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of failure it is.
    public enum Kind: String, Sendable {
        /// The template is not valid Jinja.
        case syntax
        /// Valid Jinja that Amalgam's interpreter does not implement (a tag, filter, test or method).
        case unsupported
        /// Rendering failed: a type error, an attribute of an undefined value, a bad argument.
        case runtime
        /// The template called `raise_exception(message)` (a bad conversation, usually).
        case raised
    }

    public var kind: Kind
    /// Where the template came from, e.g. `tokenizer_config.json: chat_template`.
    public var origin: String
    /// The template line (from 1) of the construct at fault.
    public var line: Int
    public var message: String

    public init(_ kind: Kind, origin: String = "chat template", line: Int, _ message: String) {
        self.kind = kind
        self.origin = origin
        self.line = line
        self.message = message
    }

    public var description: String {
        switch kind {
        case .syntax: return "\(origin), template line \(line): syntax error: \(message)"
        case .unsupported:
            return "\(origin), template line \(line): \(message) is not supported by Amalgam's chat-template interpreter; pass another template with --chat-template"
        case .runtime: return "\(origin), template line \(line): \(message)"
        case .raised: return "\(origin), template line \(line): the template refused the conversation: \(message)"
        }
    }
}
