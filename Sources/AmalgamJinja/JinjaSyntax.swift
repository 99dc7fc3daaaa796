/// An expression of a template, with the line it starts on.
struct Expression {
    indirect enum Kind {
        case literal(JinjaValue)
        case name(String)
        case list([Expression])
        case tuple([Expression])
        case dict([(Expression, Expression)])
        case attribute(Expression, String)
        case index(Expression, Expression)
        case slice(Expression, start: Expression?, stop: Expression?, step: Expression?)
        case call(Expression, Arguments)
        case filter(Expression, name: String, Arguments)
        case test(Expression, name: String, Arguments, negated: Bool)
        case not(Expression)
        case negate(Expression)
        case plus(Expression)
        /// Arithmetic and `~`: `+ - * / // % ** ~`.
        case binary(String, Expression, Expression)
        case and(Expression, Expression)
        case or(Expression, Expression)
        /// A chain `a < b <= c` (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`).
        case compare(Expression, [(String, Expression)])
        case conditional(condition: Expression, then: Expression, otherwise: Expression?)
    }

    let kind: Kind
    let line: Int
}

/// The arguments of a call, filter or test: positional, then keyword.
struct Arguments {
    var positional: [Expression] = []
    var keyword: [(String, Expression)] = []
}

/// A statement (tag or text) of a template, with its line.
struct Statement {
    indirect enum Kind {
        case text(String)
        case output(Expression)
        case conditional(branches: [(Expression, [Statement])], otherwise: [Statement])
        case loop(targets: [String], iterable: Expression, filter: Expression?, body: [Statement], otherwise: [Statement])
        /// `set a = …`, `set a, b = …`.
        case assign(targets: [String], value: Expression)
        /// `set ns.attr = …`.
        case assignAttribute(object: String, attribute: String, value: Expression)
        /// `{% set x %}…{% endset %}`.
        case capture(name: String, body: [Statement])
        case macro(name: String, parameters: [(name: String, defaultValue: Expression?)], body: [Statement])
        case breakLoop, continueLoop
        /// transformers' `{% generation %}…{% endgeneration %}`: renders its body.
        case generation([Statement])
        /// `{% filter name %}…{% endfilter %}`.
        case filterBlock(name: String, Arguments, body: [Statement])
    }

    let kind: Kind
    let line: Int
}
