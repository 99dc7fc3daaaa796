import AmalgamCore

/// A Jinja2 template compiled once and rendered many times, with jinja2's sandboxed semantics as
/// transformers configures them (`trim_blocks`, `lstrip_blocks`, undefined values render empty, no
/// autoescaping) and the globals `range`, `namespace`, `dict`, `raise_exception` and `strftime_now`.
/// The chat-template rules that are transformers' own (which variables a chat template sees) live with
/// the tokenizer's `ChatTemplate`.
public struct JinjaTemplate: @unchecked Sendable {
    /// Where the template came from, for messages (e.g. `tokenizer_config.json: chat_template`).
    public let origin: String
    private let body: [Statement]

    /// Compiles `source`; throws a syntax error naming the template line, or an unsupported construct
    /// (a tag the interpreter does not implement).
    public init(source: String, origin: String) throws(JinjaError) {
        self.origin = origin
        let lexer = try JinjaLexer(source: source, origin: origin)
        var parser = JinjaParser(tokens: lexer.tokens, origin: origin)
        body = try parser.parseTemplate()
    }

    /// The text the template renders with `variables` as its global names (JSON `null` is Python's `None`);
    /// a variable named like a built-in global replaces it.
    public func render(variables: [String: JSONValue]) throws(JinjaError) -> String {
        let globals = Scope(parent: nil)
        for name in ["range", "namespace", "dict", "raise_exception", "strftime_now"] { globals.variables[name] = .builtin(name) }
        for (k, v) in variables { globals.variables[k] = JinjaValue(v) }
        var out = ""
        let interpreter = JinjaInterpreter(origin: origin)
        _ = try interpreter.render(body, scope: Scope(parent: globals), into: &out)
        return out
    }
}
