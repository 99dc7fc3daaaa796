import AmalgamCore
import AmalgamJinja
import Testing

/// The interpreter on its own, through its public API (the chat-template fixtures against transformers are in
/// AmalgamTokenizerTests). Expected texts are jinja2 3.1's (`ImmutableSandboxedEnvironment(trim_blocks=True,
/// lstrip_blocks=True)`, as transformers configures it), rendered with the same variables.
@Suite struct JinjaTemplateTests {
    @Test func aTemplateRendersItsVariablesAsJinja2Does() throws {
        let t = try JinjaTemplate(source: "{% for x in range(3) %}{{ x }},{% endfor %}\n{% if flag %}{{ name | upper }}{% endif %}|{{ missing }}|{{ items | length }}",
                                  origin: "test")
        let items: JSONValue = .array([.number("1"), .number("2"), .null])
        #expect(try t.render(variables: ["flag": .bool(true), "name": .string("jinja"), "items": items]) == "0,1,2,JINJA||3")
        #expect(try t.render(variables: ["flag": .bool(false), "items": .array([])]) == "0,1,2,||0")
    }

    @Test func namespacesNumbersAndNoneBehaveAsInPython() throws {
        let t = try JinjaTemplate(source: "{% set ns = namespace(total=0) %}{% for v in values %}{% set ns.total = ns.total + v %}{% endfor %}{{ ns.total }} {{ values | tojson }} {{ none_value is none }}",
                                  origin: "test")
        let values: JSONValue = .array([.number("1"), .number("2"), .number("3.5")])
        #expect(try t.render(variables: ["values": values, "none_value": .null]) == "6.5 [1, 2, 3.5] True")
    }

    @Test func aVariableNamedLikeABuiltinReplacesIt() throws {
        let t = try JinjaTemplate(source: "{{ range }}", origin: "test")
        #expect(try t.render(variables: ["range": .string("shadowed")]) == "shadowed")
    }

    @Test func raiseExceptionNamesTheOriginAndLine() throws {
        let t = try JinjaTemplate(source: "{% if not ok %}\n{{ raise_exception('no system message') }}{% endif %}", origin: "my.jinja")
        #expect(try t.render(variables: ["ok": .bool(true)]) == "")
        #expect(performing: { try t.render(variables: ["ok": .bool(false)]) },
                throws: { ($0 as? JinjaError).map { $0.kind == .raised && $0.line == 2 && $0.origin == "my.jinja" && $0.message == "no system message" } ?? false })
    }
}
